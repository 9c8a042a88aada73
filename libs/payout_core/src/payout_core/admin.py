"""`payout-admin`: operator commands (migrations, API clients, reconciliation, payouts needing
attention, housekeeping)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core import clients
from payout_core.db import attention
from payout_core.db.engine import create_engine
from payout_core.db.migrate import migrate
from payout_core.housekeeping import Retention, housekeep_once
from payout_core.logging import configure_logging
from payout_core.messaging.broker import Broker
from payout_core.provider_client import ProviderClient
from payout_core.reconcile import Reconciled, reconcile_once
from payout_core.settings import Settings, load_or_exit


async def _with_conn(settings: Settings, action: Callable[..., Awaitable[object]]) -> object:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            return await action(conn)
    finally:
        await engine.dispose()


async def _create_client(settings: Settings, name: str) -> int:
    try:
        key = await _with_conn(settings, lambda c: clients.create_client(c, name))
    except clients.ClientExists:
        print(f"error: a client named {name!r} already exists", file=sys.stderr)
        return 1
    print(f"created client {name!r}; its API key (shown once, store it now):")
    print(key)
    return 0


async def _list_clients(settings: Settings) -> int:
    rows = await _with_conn(settings, clients.list_clients)
    assert isinstance(rows, list)
    print(f"{'NAME':<24} {'KEY':<10} {'STATUS':<9} CREATED")
    for c in rows:
        status = "disabled" if c.disabled_at else "enabled"
        print(f"{c.name:<24} {'…' + c.key_last4:<10} {status:<9} {c.created_at:%Y-%m-%d %H:%M}")
    return 0


async def _disable_client(settings: Settings, name: str) -> int:
    try:
        await _with_conn(settings, lambda c: clients.disable_client(c, name))
    except clients.ClientNotFound:
        print(f"error: no client named {name!r}", file=sys.stderr)
        return 1
    print(f"disabled client {name!r}")
    return 0


@contextlib.asynccontextmanager
async def _engine_and_broker(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, Broker]]:
    engine = create_engine(settings.database_url, pool_size=2)
    broker = Broker(
        settings.amqp_url,
        retry_base_ms=settings.processor_retry_base_ms,
        max_attempts=settings.processor_max_attempts,
    )
    broker.start()
    try:
        await broker.wait_ready(timeout=30)
        yield engine, broker
    finally:
        await broker.close()
        await engine.dispose()


async def _reconcile(settings: Settings, stuck_after_s: float) -> int:
    provider = ProviderClient(settings.provider_url, settings.provider_timeout_s)
    async with _engine_and_broker(settings) as (engine, broker):
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
    print(
        f"re-enqueued {total.reenqueued} stuck payout(s), resolved {total.resolved} by a "
        f"provider lookup, flagged {total.flagged} for operators"
    )
    return 0


async def _attention(settings: Settings) -> int:
    rows = await _with_conn(settings, attention.list_needing_attention)
    assert isinstance(rows, list)
    print(f"{'PAYOUT':<36} {'STATUS':<10} {'AMOUNT':>14} {'IN DOUBT SINCE':<16} FLAGGED")
    for r in rows:
        doubt = f"{r.in_doubt_since:%Y-%m-%d %H:%M}" if r.in_doubt_since else "-"
        flagged = f"{r.flagged_at:%Y-%m-%d %H:%M} {r.flag_reason}" if r.flagged_at else "-"
        amount = f"{r.amount.normalize():f} {r.currency}"
        print(f"{r.id!s:<36} {r.status:<10} {amount:>14} {doubt:<16} {flagged}")
    print(f"{len(rows)} payout(s) need attention")
    return 0


async def _housekeeping(settings: Settings) -> int:
    retention = Retention(
        outbox_published_s=settings.outbox_keep_published_s,
        dead_letters_s=settings.dead_letter_keep_s,
        batch=settings.housekeeping_batch,
    )
    async with _engine_and_broker(settings) as (engine, broker):
        deleted = await housekeep_once(engine, broker.topology.dead_queue, retention)
    if deleted is None:
        print("another housekeeping run holds the lock; nothing done")
        return 0
    print("pruned " + ", ".join(f"{count} {table}" for table, count in deleted.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payout-admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    create = sub.add_parser("create-client", help="create an API client and print its key")
    create.add_argument("name")
    sub.add_parser("list-clients", help="list API clients")
    disable = sub.add_parser("disable-client", help="disable an API client's key")
    disable.add_argument("name")
    reconcile = sub.add_parser("reconcile", help="re-enqueue payouts stuck in pending/processing")
    reconcile.add_argument(
        "--stuck-after",
        type=float,
        default=None,
        help="seconds without progress (default: RECONCILE_STUCK_AFTER_S)",
    )
    sub.add_parser("attention", help="list unfinished payouts in doubt at the provider or flagged")
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
    runners = {
        "create-client": lambda: _create_client(settings, args.name),
        "list-clients": lambda: _list_clients(settings),
        "disable-client": lambda: _disable_client(settings, args.name),
        "reconcile": lambda: _reconcile(
            settings,
            args.stuck_after if args.stuck_after is not None else settings.reconcile_stuck_after_s,
        ),
        "attention": lambda: _attention(settings),
        "housekeeping": lambda: _housekeeping(settings),
    }
    raise SystemExit(asyncio.run(runners[args.command]()))
