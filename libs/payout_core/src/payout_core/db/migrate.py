"""Create the database if missing and apply Alembic migrations (used by `payout-admin migrate`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from payout_core.db.dsn import connect_url, parse

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's config is ConfigParser-based: '%' must be escaped.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def create_database_if_missing(database_url: str) -> bool:
    """Create the database named in the URL; True when it had to be created."""
    url = parse(connect_url(database_url))
    name = url.database
    conn = await asyncpg.connect(url.with_database("postgres"), timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + str(name).replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:  # another replica won the race
            return False
        return True
    finally:
        await conn.close()


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def migrate(database_url: str) -> None:
    asyncio.run(create_database_if_missing(database_url))
    upgrade(database_url)
