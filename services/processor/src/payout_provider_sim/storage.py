"""The provider's own books, in its own database: every execution is a row of `transfers`
(a double payment is two rows), and `idempotency_keys` maps a key to the transfer it produced
for as long as the key is retained."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.migrate import create_database_if_missing

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("failure_code", sa.Text),
    sa.Column("amount", sa.Numeric(22, 4), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("account_last4", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
    sa.CheckConstraint("status IN ('executed','declined')", name="transfers_status"),
)
sa.Index("ix_transfers_reference", transfers.c.reference, transfers.c.id)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("transfer_id", sa.BigInteger, sa.ForeignKey("transfers.id")),
    sa.Column("created_at", TS, nullable=False, server_default=sa.text("now()")),
)

# Two simulators starting together on a new database create the schema once.
SCHEMA_LOCK = 0x70726F76  # "prov"


async def ensure_schema(database_url: str, engine: AsyncEngine) -> None:
    """Create the database if missing, then the tables (idempotent, one starter at a time).
    The schema is small and append-only: CREATE ... IF NOT EXISTS is its migration."""
    await create_database_if_missing(database_url)
    async with engine.begin() as conn:
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(SCHEMA_LOCK)))
        await conn.run_sync(metadata.create_all, checkfirst=True)
