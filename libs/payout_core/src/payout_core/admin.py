"""`payout-admin`: operator commands (migrations, API clients, reconciliation)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from payout_core import clients
from payout_core.cli import add_common_options
from payout_core.db.engine import create_engine
from payout_core.db.migrate import migrate
from payout_core.logging import configure_logging
from payout_core.messaging.broker import Broker
from payout_core.reconcile import reconcile_once
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


async def _reconcile(settings: Settings, stuck_after_s: float) -> int:
    engine = create_engine(settings.database_url, pool_size=1)
    broker = Broker(
        settings.amqp_url,
        retry_base_ms=settings.processor_retry_base_ms,
        max_attempts=settings.processor_max_attempts,
    )
    broker.start()
    try:
        await broker.wait_ready(timeout=30)
        async with engine.connect() as conn:
            started = await conn.scalar(sa.select(sa.func.now()))
        total = 0
        while count := await reconcile_once(engine, broker, stuck_after_s, not_since=started):
            total += count
        print(f"re-enqueued {total} stuck payout(s)")
        return 0
    finally:
        await broker.close()
        await engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payout-admin", description=__doc__)
    add_common_options(parser, "payout-core")
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
    }
    raise SystemExit(asyncio.run(runners[args.command]()))
