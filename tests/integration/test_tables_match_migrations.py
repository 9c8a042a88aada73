"""The tables the code uses (payout_core.db.tables) agree with the schema the Alembic
migrations build: autogenerate, run against a freshly migrated database, finds nothing to do."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import metadata


def _differences(sync_connection) -> list:
    context = MigrationContext.configure(
        sync_connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return compare_metadata(context, metadata)


async def test_autogenerate_finds_no_difference_between_tables_and_migrations(
    engine: AsyncEngine,
):
    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == [], differences


async def test_the_check_sees_a_table_the_migrations_lack(engine: AsyncEngine):
    """The check above can fail: a table only the code knows is reported."""
    extra = sa.Table("not_migrated", metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(_differences)
    finally:
        metadata.remove(extra)
    assert [d[0] for d in differences] == ["add_table"], differences
