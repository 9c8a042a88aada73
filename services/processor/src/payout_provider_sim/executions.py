"""Executing transfers, concurrent requests coalesced into one statement (group commit).

Per request, the claim of its idempotency key and the transfer it executes are written
together: a transfer row exists exactly when its key was claimed (or reclaimed after its
retention), and the key points at it from the start, so no other request ever sees a claimed
key without its transfer. Every execution is still a row of its own; a key that a live record
holds returns nothing here and its request replays that record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.engine import autocommit
from payout_processor.batching import Batcher

# Keys are claimed in key order: two batches (two simulators) never wait on each other in a
# cycle. A key a concurrent transaction holds makes this one wait until it is decided.
_EXECUTE = (
    sa.text("""
WITH input AS MATERIALIZED (
    SELECT i.*, nextval(pg_get_serial_sequence('transfers', 'id')) AS transfer_id
    FROM unnest(:keys, :request_hashes, :references, :statuses, :failure_codes, :amounts,
        :currencies, :accounts_last4)
        AS i(key, request_hash, reference, status, failure_code, amount, currency,
            account_last4)
), claimed AS (
    INSERT INTO idempotency_keys AS k (key, request_hash, transfer_id, created_at)
    SELECT key, request_hash, transfer_id, now() FROM input ORDER BY key
    ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
        transfer_id = excluded.transfer_id, created_at = now()
    WHERE k.created_at < now() - make_interval(secs => :retention_s)
    RETURNING key, transfer_id
), executed AS (
    INSERT INTO transfers (id, reference, status, failure_code, amount, currency, account_last4)
    SELECT input.transfer_id, reference, status, failure_code, amount, currency, account_last4
    FROM input JOIN claimed USING (transfer_id)
    RETURNING *
)
SELECT claimed.key, executed.* FROM executed JOIN claimed ON claimed.transfer_id = executed.id
""")
    .bindparams(
        *(
            sa.bindparam(name, type_=ARRAY(sa.Text))
            for name in (
                "keys",
                "request_hashes",
                "references",
                "statuses",
                "failure_codes",
                "currencies",
                "accounts_last4",
            )
        ),
        sa.bindparam("amounts", type_=ARRAY(sa.Numeric(22, 4))),
        sa.bindparam("retention_s", type_=sa.Float),
    )
    .columns(
        sa.column("key", sa.Text),
        sa.column("id", sa.BigInteger),
        sa.column("reference", sa.Text),
        sa.column("status", sa.Text),
        sa.column("failure_code", sa.Text),
        sa.column("amount", sa.Numeric(22, 4)),
        sa.column("currency", sa.Text),
        sa.column("account_last4", sa.Text),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
)


@dataclass(frozen=True)
class Execution:
    """One request to execute: its key and body, and the provider's decision for it."""

    key: str
    request_hash: str
    reference: str
    amount: Decimal
    currency: str
    account: str
    status: str
    failure_code: str | None


def _key(execution: Execution) -> str:
    return execution.key


class Executions:
    """execute(e) -> the transfer row it wrote, or None: a live record holds its key."""

    def __init__(self, engine: AsyncEngine, retention_s: float) -> None:
        self._engine = engine
        self._retention_s = retention_s
        self._batches: Batcher[Execution, Any] = Batcher(
            self._execute_all, _key, name="execute transfers"
        )

    async def execute(self, execution: Execution) -> Any:
        return await self._batches.submit(execution)

    async def _execute_all(self, batch: Sequence[Execution]) -> list[Any]:
        params = {
            "keys": [e.key for e in batch],
            "request_hashes": [e.request_hash for e in batch],
            "references": [e.reference for e in batch],
            "statuses": [e.status for e in batch],
            "failure_codes": [e.failure_code for e in batch],
            "amounts": [e.amount for e in batch],
            "currencies": [e.currency for e in batch],
            "accounts_last4": [e.account[-4:] for e in batch],
            "retention_s": self._retention_s,
        }
        async with autocommit(self._engine) as conn:
            rows = (await conn.execute(_EXECUTE, params)).all()
        executed = {row.key: row for row in rows}
        return [executed.get(e.key) for e in batch]
