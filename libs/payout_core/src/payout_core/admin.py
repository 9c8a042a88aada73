"""`payout-admin`: operator commands (migrations, API clients and keys, the audit table,
reconciliation, payouts needing attention and unflagging them, housekeeping)."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core import audit, clients
from payout_core.bootstrap import build_engine, ready_resources
from payout_core.cli import add_common_options
from payout_core.db import attention
from payout_core.db.migrate import migrate
from payout_core.housekeeping import Retention, housekeep_once
from payout_core.logging import configure_logging
from payout_core.provider_client import ProviderClient
from payout_core.reconcile import Reconciled, reconcile_once
from payout_core.settings import Settings, load_or_exit

T = TypeVar("T")


DURATION = re.compile(r"(\d+)([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_DURATION = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `1h30m`, `0` (argparse type: a bad value is a usage error)."""
    if text == "0":
        return timedelta(0)
    if not text or DURATION.sub("", text):
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number and a unit s, m, h or d, like 30m, 24h, 7d"
        )
    seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in DURATION.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def _utc(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _with_conn(settings: Settings, action: Callable[..., Awaitable[T]]) -> T:
    """Run the action in one transaction: its audit row commits with it or not at all."""
    engine = build_engine(settings, pool_size=1)
    try:
        async with engine.begin() as conn:
            return await action(conn)
    finally:
        await engine.dispose()


# The use cases' errors, as one line on stderr and exit code 1 (the argument: the client's name,
# or the key id prefix for KeyNotFound).
ERRORS: dict[type[Exception], str] = {
    clients.ClientExists: "a client named {!r} already exists",
    clients.ClientNotFound: "no client named {!r}",
    clients.ClientDisabled: "client {!r} is disabled",
    clients.KeyNotFound: "the client has no single unrevoked key whose id starts with {!r}",
    attention.NotFlagged: "no unfinished payout {} is flagged",
}


async def _create_client(settings: Settings, actor: str, name: str) -> int:
    async def action(conn: AsyncConnection) -> str:
        key = await clients.create_client(conn, name)
        details = {"key": clients.mask(key[-4:]), "scope": clients.WRITE}
        await audit.record(conn, actor, "create-client", name, details)
        return key

    key = await _with_conn(settings, action)
    print(f"created client {name!r}; its API key (shown once, store it now):")
    print(key)
    return 0


async def _list_clients(settings: Settings, actor: str) -> int:
    async def action(conn: AsyncConnection) -> list[clients.Client]:
        rows = await clients.list_clients(conn)
        await audit.record(conn, actor, "list-clients", None, {"clients": len(rows)})
        return rows

    rows = await _with_conn(settings, action)
    print(f"{'NAME':<24} {'KEYS':<5} {'STATUS':<9} CREATED")
    for c in rows:
        status = "disabled" if c.disabled_at else "enabled"
        print(f"{c.name:<24} {c.active_keys:<5} {status:<9} {_utc(c.created_at)}")
    return 0


async def _disable_client(settings: Settings, actor: str, name: str) -> int:
    async def action(conn: AsyncConnection) -> None:
        await clients.disable_client(conn, name)
        await audit.record(conn, actor, "disable-client", name)

    await _with_conn(settings, action)
    print(f"disabled client {name!r}: all its keys are refused from now on")
    return 0


async def _create_key(settings: Settings, actor: str, name: str, scope: str) -> int:
    async def action(conn: AsyncConnection) -> str:
        key = await clients.create_key(conn, name, scope)
        details = {"key": clients.mask(key[-4:]), "scope": scope}
        await audit.record(conn, actor, "create-key", name, details)
        return key

    key = await _with_conn(settings, action)
    print(f"created a {scope} key for {name!r} (shown once, store it now):")
    print(key)
    return 0


async def _roll_key(
    settings: Settings, actor: str, name: str, overlap: timedelta, scope: str
) -> int:
    async def action(conn: AsyncConnection) -> clients.RolledKey:
        rolled = await clients.roll_key(conn, name, overlap, scope)
        details = {
            "new_key": clients.mask(rolled.key[-4:]),
            "scope": scope,
            "expire_old_after_s": int(overlap.total_seconds()),
            "expiring": [
                {"key": clients.mask(last4), "expires_at": at.isoformat()}
                for last4, at in rolled.expiring
            ],
        }
        await audit.record(conn, actor, "roll-key", name, details)
        return rolled

    rolled = await _with_conn(settings, action)
    print(f"new {scope} key for {name!r} (shown once, store it now):")
    print(rolled.key)
    for last4, at in rolled.expiring:
        print(f"old key {clients.mask(last4)} works until {_utc(at)}")
    if not rolled.expiring:
        print(f"{name!r} had no other usable {scope} key")
    return 0


async def _revoke_key(settings: Settings, actor: str, name: str, key_id: str) -> int:
    async def action(conn: AsyncConnection) -> str:
        last4 = await clients.revoke_key(conn, name, key_id)
        details = {"key": clients.mask(last4), "key_id": key_id}
        await audit.record(conn, actor, "revoke-key", name, details)
        return last4

    last4 = await _with_conn(settings, action)
    print(
        f"revoked key {clients.mask(last4)} of {name!r}; API processes that checked it in the "
        f"last API_KEY_CACHE_TTL_S ({settings.api_key_cache_ttl_s:g} s) refuse it after that"
    )
    return 0


async def _list_keys(settings: Settings, actor: str, name: str | None) -> int:
    async def action(conn: AsyncConnection) -> list[clients.KeyInfo]:
        rows = await clients.list_keys(conn, name)
        await audit.record(conn, actor, "list-keys", name, {"keys": len(rows)})
        return rows

    rows = await _with_conn(settings, action)
    print(f"{'CLIENT':<24} {'ID':<8} {'KEY':<6} {'SCOPE':<5} {'STATE':<15} {'CREATED':<23} EXPIRES")
    for k in rows:
        print(
            f"{k.client:<24} {str(k.id)[:8]} {clients.mask(k.last4):<6} {k.scope:<5} "
            f"{k.state:<15} {_utc(k.created_at):<23} {_utc(k.expires_at)}"
        )
    return 0


async def _audit(settings: Settings, client: str | None, limit: int, as_json: bool) -> int:
    rows = await _with_conn(settings, lambda c: audit.entries(c, client=client, limit=limit))
    if as_json:
        for e in rows:
            line = {**asdict(e), "at": e.at.isoformat()}
            print(json.dumps(line, ensure_ascii=False, sort_keys=True))
        return 0
    print(f"{'AT':<23} {'ACTOR':<22} {'ACTION':<15} {'CLIENT':<24} DETAILS")
    for e in rows:
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        print(f"{_utc(e.at):<23} {e.actor:<22} {e.action:<15} {e.client or '-':<24} {details}")
    return 0


async def _reconcile(settings: Settings, actor: str, stuck_after_s: float) -> int:
    provider = ProviderClient(settings.provider_url, settings.provider_timeout_s)
    async with ready_resources(settings, pool_size=2) as resources:
        engine, broker = resources.engine, resources.broker
        async with engine.connect() as conn:
            started = await conn.scalar(sa.select(sa.func.now()))
        total = Reconciled()
        try:
            while (
                found := await reconcile_once(
                    engine,
                    broker,
                    provider,
                    stuck_after_s,
                    max_reenqueues=settings.reconcile_max_reenqueues,
                    not_since=started,
                )
            ).claimed:
                total = Reconciled(
                    total.reenqueued + found.reenqueued,
                    total.resolved + found.resolved,
                    total.flagged + found.flagged,
                )
        finally:
            await provider.close()
        async with engine.begin() as conn:
            details = {
                "re_enqueued": total.reenqueued,
                "resolved": total.resolved,
                "flagged": total.flagged,
                "stuck_after_s": stuck_after_s,
            }
            await audit.record(conn, actor, "reconcile", None, details)
    print(
        f"re-enqueued {total.reenqueued} stuck payout(s), resolved {total.resolved} by a "
        f"provider lookup, flagged {total.flagged} for operators"
    )
    return 0


async def _attention(settings: Settings) -> int:
    rows = await _with_conn(settings, attention.list_needing_attention)
    print(f"{'PAYOUT':<36} {'STATUS':<10} {'AMOUNT':>14} {'IN DOUBT SINCE':<16} FLAGGED")
    for r in rows:
        doubt = f"{r.in_doubt_since:%Y-%m-%d %H:%M}" if r.in_doubt_since else "-"
        flagged = f"{r.flagged_at:%Y-%m-%d %H:%M} {r.flag_reason}" if r.flagged_at else "-"
        amount = f"{r.amount.normalize():f} {r.currency}"
        print(f"{r.id!s:<36} {r.status:<10} {amount:>14} {doubt:<16} {flagged}")
    print(f"{len(rows)} payout(s) need attention")
    return 0


async def _unflag(settings: Settings, actor: str, payout_id: uuid.UUID) -> int:
    async def action(conn: AsyncConnection) -> str:
        reason = await attention.unflag(conn, payout_id)
        await audit.record(
            conn, actor, "unflag", None, {"payout_id": str(payout_id), "was": reason}
        )
        return reason

    reason = await _with_conn(settings, action)
    print(
        f"payout {payout_id} unflagged (was {reason}): the next reconciler pass looks it up at "
        "the provider or re-enqueues it, with its re-enqueues renewed"
    )
    return 0


async def _housekeeping(settings: Settings) -> int:
    retention = Retention(
        outbox_published_s=settings.outbox_keep_published_s,
        dead_letters_s=settings.dead_letter_keep_s,
        batch=settings.housekeeping_batch,
        webhook_events_s=settings.webhook_event_retention_s,
    )
    async with ready_resources(settings, pool_size=2) as resources:
        dead_queue = resources.broker.topology.dead_queue
        deleted = await housekeep_once(resources.engine, dead_queue, retention)
    if deleted is None:
        print("another housekeeping run holds the lock; nothing done")
        return 0
    print("pruned " + ", ".join(f"{count} {table}" for table, count in deleted.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payout-admin", description=__doc__)
    add_common_options(parser, "payout-core")
    # Every command that changes or shows clients and keys is recorded in the audit table.
    audited = argparse.ArgumentParser(add_help=False)
    audited.add_argument(
        "--actor",
        default=None,
        help="who is acting, for the audit table (default: the OS user)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    create = sub.add_parser(
        "create-client", parents=[audited], help="create an API client and print its write key"
    )
    create.add_argument("name")
    sub.add_parser("list-clients", parents=[audited], help="list API clients")
    disable = sub.add_parser(
        "disable-client", parents=[audited], help="disable an API client (all its keys)"
    )
    disable.add_argument("name")
    create_key = sub.add_parser(
        "create-key", parents=[audited], help="give a client another key and print it"
    )
    create_key.add_argument("name")
    create_key.add_argument(
        "--scope",
        choices=clients.SCOPES,
        default=clients.WRITE,
        help="write (everything) or read (GET only; writes answer 403); default write",
    )
    roll = sub.add_parser(
        "roll-key",
        parents=[audited],
        help="issue a new key; the old one keeps working for an overlap, then is refused",
    )
    roll.add_argument("name")
    roll.add_argument(
        "--expire-old-after",
        type=parse_duration,
        required=True,
        metavar="DURATION",
        help="how long the old key keeps working: 30m, 24h, 7d, 1h30m; 0 stops it now",
    )
    roll.add_argument(
        "--scope", choices=clients.SCOPES, default=clients.WRITE, help="which keys to roll"
    )
    revoke = sub.add_parser("revoke-key", parents=[audited], help="revoke one key of a client")
    revoke.add_argument("name")
    revoke.add_argument("key_id", help="the key's ID as list-keys shows it (a prefix will do)")
    list_keys = sub.add_parser(
        "list-keys", parents=[audited], help="list keys (of one client or all) and their state"
    )
    list_keys.add_argument("name", nargs="?")
    audit_cmd = sub.add_parser("audit", help="list the audit table of admin actions")
    audit_cmd.add_argument("--client", help="only actions on this client")
    audit_cmd.add_argument("--limit", type=int, default=50, help="the latest N (default 50)")
    audit_cmd.add_argument("--json", action="store_true", help="one JSON object per line")
    reconcile = sub.add_parser(
        "reconcile",
        parents=[audited],
        help="settle payouts stuck in pending/processing (provider lookup or re-enqueue)",
    )
    reconcile.add_argument(
        "--stuck-after",
        type=float,
        default=None,
        help="seconds without progress (default: RECONCILE_STUCK_AFTER_S)",
    )
    sub.add_parser("attention", help="list unfinished payouts in doubt at the provider or flagged")
    unflag = sub.add_parser(
        "unflag",
        parents=[audited],
        help="hand a flagged payout back to the reconciler (provider lookup, then re-enqueue)",
    )
    unflag.add_argument("payout_id", type=uuid.UUID, help="the payout's id")
    sub.add_parser(
        "housekeeping",
        help="prune published outbox rows, expired idempotency keys, old dead letters",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_or_exit()
    configure_logging("admin", settings.log_level, settings.log_format)
    if args.command == "migrate":
        migrate(settings.database_url)
        print("database is at the latest migration")
        return
    actor = getattr(args, "actor", None) or audit.os_user()
    runners: dict[str, Callable[[], Coroutine[Any, Any, int]]] = {
        "create-client": lambda: _create_client(settings, actor, args.name),
        "list-clients": lambda: _list_clients(settings, actor),
        "disable-client": lambda: _disable_client(settings, actor, args.name),
        "create-key": lambda: _create_key(settings, actor, args.name, args.scope),
        "roll-key": lambda: _roll_key(
            settings, actor, args.name, args.expire_old_after, args.scope
        ),
        "revoke-key": lambda: _revoke_key(settings, actor, args.name, args.key_id),
        "list-keys": lambda: _list_keys(settings, actor, args.name),
        "audit": lambda: _audit(settings, args.client, args.limit, args.json),
        "reconcile": lambda: _reconcile(
            settings,
            actor,
            args.stuck_after if args.stuck_after is not None else settings.reconcile_stuck_after_s,
        ),
        "attention": lambda: _attention(settings),
        "unflag": lambda: _unflag(settings, actor, args.payout_id),
        "housekeeping": lambda: _housekeeping(settings),
    }
    try:
        code = asyncio.run(runners[args.command]())
    except tuple(ERRORS) as exc:
        print("error: " + ERRORS[type(exc)].format(exc.args[0]), file=sys.stderr)
        code = 1
    raise SystemExit(code)
