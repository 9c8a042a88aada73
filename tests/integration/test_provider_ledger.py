"""The simulated provider's ledger: a reference is decided once, and a voided one never pays."""

from __future__ import annotations

import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.tables import provider_ledger
from payout_processor.provider import FAILED, SUCCEEDED, SimulatedProvider

ACCOUNT = "DE89370400440532013000"


async def ledger_row(engine: AsyncEngine, reference: str):
    async with engine.connect() as conn:
        query = sa.select(provider_ledger).where(provider_ledger.c.reference == reference)
        return (await conn.execute(query)).one()


async def test_a_repeated_reference_gets_the_first_result_back(engine: AsyncEngine):
    provider, reference = SimulatedProvider(engine, delay_ms=0), str(uuid.uuid4())
    first = await provider.execute(reference, Decimal("12.34"), "EUR", ACCOUNT)
    again = await provider.execute(reference, Decimal("99.00"), "USD", "000111111116")
    assert (first.outcome, first.replayed) == (SUCCEEDED, False)
    assert (again.outcome, again.replayed) == (SUCCEEDED, True)
    row = await ledger_row(engine, reference)
    assert (row.calls, row.amount, row.currency) == (2, Decimal("12.34"), "EUR")


async def test_a_voided_reference_never_executes(engine: AsyncEngine):
    provider, reference = SimulatedProvider(engine, delay_ms=0), str(uuid.uuid4())
    voided = await provider.void(reference, "processing_error")
    late = await provider.execute(reference, Decimal("12.34"), "EUR", ACCOUNT)
    assert (voided.outcome, voided.failure_code) == (FAILED, "processing_error")
    assert (late.outcome, late.failure_code, late.replayed) == (FAILED, "processing_error", True)
    row = await ledger_row(engine, reference)
    assert row.outcome == FAILED and row.executed_at is None
