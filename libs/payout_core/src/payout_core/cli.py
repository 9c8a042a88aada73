"""What every console script answers before it does its job: `--help`, `--version` and
`--check-config` (every setting, then whether PostgreSQL and RabbitMQ answer).

`--check-config` prints one line per problem on stderr and exits 2, or one line on stdout and
exits 0: an init container or a deploy script can run it before the service starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import asyncpg

from payout_core.settings import ConfigError, Settings

# Each dependency gets this long to answer; an init container is retried by the kubelet anyway.
CONNECT_TIMEOUT_S = 5.0
CHECK_OK = 0
CHECK_FAILED = 2


def distribution_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # running from a source tree without installed metadata
        return "unknown"


def setting_problems(env: Mapping[str, str]) -> list[str]:
    """Every setting that has a value the service cannot use, one message each."""
    problems = []
    for f in fields(Settings):
        raw = env.get(f.metadata["env"])
        if not raw:
            continue
        try:
            f.metadata["parse"](f.metadata["env"], raw)
        except ConfigError as exc:
            problems.append(str(exc))
    if not problems:
        try:  # rules between settings, if any, live in Settings itself
            Settings.from_env(env)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _where(url: str) -> str:
    """host:port of a URL, without its credentials (they never reach a log)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _reason(exc: BaseException) -> str:
    message = " ".join(str(exc).split())  # one line, whatever the driver's message holds
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def _postgres_problem(database_url: str) -> str | None:
    try:
        conn = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_S)
        try:
            await conn.fetchval("SELECT 1", timeout=CONNECT_TIMEOUT_S)
        finally:
            await conn.close()
    except Exception as exc:  # any failure is the one problem this line reports
        return f"DATABASE_URL: PostgreSQL at {_where(database_url)} did not answer: {_reason(exc)}"
    return None


async def _rabbitmq_problem(amqp_url: str) -> str | None:
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            connection = await aio_pika.connect(amqp_url, timeout=CONNECT_TIMEOUT_S)
            await connection.close()
    except Exception as exc:  # any failure is the one problem this line reports
        return f"AMQP_URL: RabbitMQ at {_where(amqp_url)} did not answer: {_reason(exc)}"
    return None


async def _dependency_problems(settings: Settings) -> list[str]:
    answers = await asyncio.gather(
        _postgres_problem(settings.database_url), _rabbitmq_problem(settings.amqp_url)
    )
    return [problem for problem in answers if problem]


def check_config(env: Mapping[str, str] | None = None) -> list[str]:
    """The problems of this environment: settings first; the services only once those are
    valid (their URLs are settings)."""
    env = os.environ if env is None else env
    problems = setting_problems(env)
    if problems:
        return problems
    return asyncio.run(_dependency_problems(Settings.from_env(env)))


class _CheckConfigAction(argparse.Action):
    """Runs the check while the arguments are parsed (as --version does), so it works even
    where the parser requires a subcommand."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        problems = check_config()
        for problem in problems:
            print(f"{parser.prog}: {problem}", file=sys.stderr)
        if problems:
            raise SystemExit(CHECK_FAILED)
        print(f"{parser.prog}: configuration ok; PostgreSQL and RabbitMQ answer")
        raise SystemExit(CHECK_OK)


def add_common_options(parser: argparse.ArgumentParser, distribution: str) -> None:
    """--version and --check-config on an entry point's parser."""
    parser.add_argument(
        "--version",
        action="version",
        version=f"{parser.prog} {distribution_version(distribution)}",
    )
    parser.add_argument(
        "--check-config",
        action=_CheckConfigAction,
        nargs=0,
        help="validate every setting and that PostgreSQL and RabbitMQ answer, then exit "
        "(0: ready; 2: one line per problem on stderr)",
    )


def parse_service_args(
    prog: str, description: str | None, distribution: str, argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """The arguments of a service that takes no others (its settings come from the
    environment, see docs and `--check-config`)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Settings come from environment variables (README: Configuration).",
    )
    add_common_options(parser, distribution)
    return parser.parse_args(argv)
