"""The simulated payout provider, with its own ledger in PostgreSQL.

Every call carries an idempotency reference (the payout id). The first call that reaches a
result records it; any later call with the same reference gets that result back and moves no
money, so a crash between the provider call and our commit never pays twice.

Test accounts (after Stripe's test bank accounts):
  000111111116 -> no_account, 000111111113 -> account_closed,
  000222222227 -> insufficient_funds, 000999999991 -> times out twice, then succeeds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.db.engine import autocommit
from payout_core.db.tables import provider_ledger
from payout_core.logging import get_logger
from payout_processor.batching import Batcher

log = get_logger(__name__)

FAILING_ACCOUNTS = {
    "000111111116": "no_account",
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
}
TIMEOUT_ACCOUNT = "000999999991"
TIMEOUTS_BEFORE_SUCCESS = 2
SUCCEEDED = "succeeded"
FAILED = "failed"


# Calls in one statement (a reference's row serializes concurrent calls): the first result
# recorded for a reference stands; "existed" tells a repeated call from the first.
_RECORD = sa.text("""
INSERT INTO provider_ledger AS ledger (reference, calls, outcome, failure_code, amount,
    currency, account_last4, executed_at)
SELECT reference, 1, outcome, failure_code, amount, currency, account_last4, now()
FROM unnest(:references, :outcomes, :failure_codes, :amounts, :currencies, :accounts_last4)
    AS call(reference, outcome, failure_code, amount, currency, account_last4)
ORDER BY reference
ON CONFLICT (reference) DO UPDATE SET
    calls = ledger.calls + 1,
    outcome = coalesce(ledger.outcome, excluded.outcome),
    failure_code = CASE WHEN ledger.outcome IS NULL THEN excluded.failure_code
        ELSE ledger.failure_code END,
    amount = coalesce(ledger.amount, excluded.amount),
    currency = coalesce(ledger.currency, excluded.currency),
    account_last4 = coalesce(ledger.account_last4, excluded.account_last4),
    executed_at = CASE WHEN ledger.outcome IS NULL THEN excluded.executed_at
        ELSE ledger.executed_at END
RETURNING reference, outcome, failure_code, xmax <> 0 AS existed
""").bindparams(
    sa.bindparam("amounts", type_=ARRAY(sa.Numeric(22, 4))),
    *(
        sa.bindparam(name, type_=ARRAY(sa.Text))
        for name in ("references", "outcomes", "failure_codes", "currencies", "accounts_last4")
    ),
)


@dataclass(frozen=True)
class _Call:
    reference: str
    decided: ProviderResult
    amount: Decimal
    currency: str
    account_last4: str


class ProviderTimeout(Exception):
    """The provider did not answer in time; the call may be retried with the same reference."""


@dataclass(frozen=True)
class ProviderResult:
    outcome: str
    failure_code: str | None = None
    replayed: bool = False


class SimulatedProvider:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        delay_ms: int = 200,
        failure_rate: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._delay = delay_ms / 1000
        self._failure_rate = failure_rate
        self._rng = rng or random.Random()
        self._records: Batcher[_Call, ProviderResult] = Batcher(
            self._record_all, lambda call: call.reference
        )

    def _decide(self, account: str) -> ProviderResult:
        if account in FAILING_ACCOUNTS:
            return ProviderResult(FAILED, FAILING_ACCOUNTS[account])
        if self._failure_rate and self._rng.random() < self._failure_rate:
            return ProviderResult(FAILED, "provider_declined")
        return ProviderResult(SUCCEEDED)

    async def execute(
        self, reference: str, amount: Decimal, currency: str, account: str
    ) -> ProviderResult:
        # The account is masked to its last 4 characters by the logging set-up.
        log.debug("provider_call", reference=reference, currency=currency, account=account)
        if self._delay:
            await asyncio.sleep(self._delay)
        if account != TIMEOUT_ACCOUNT:
            return await self._record(reference, amount, currency, account)
        timed_out = False
        async with self._engine.begin() as conn:
            # The upsert locks the reference's row until commit: concurrent calls serialize.
            row = (
                await conn.execute(
                    insert(provider_ledger)
                    .values(reference=reference, calls=1)
                    .on_conflict_do_update(
                        index_elements=[provider_ledger.c.reference],
                        set_={"calls": provider_ledger.c.calls + 1},
                    )
                    .returning(
                        provider_ledger.c.calls,
                        provider_ledger.c.outcome,
                        provider_ledger.c.failure_code,
                    )
                )
            ).one()
            if row.outcome is not None:
                return ProviderResult(row.outcome, row.failure_code, replayed=True)
            if row.calls <= TIMEOUTS_BEFORE_SUCCESS:
                timed_out = True  # the call is counted (committed), no money moved
            else:
                result = self._decide(account)
                await conn.execute(
                    provider_ledger.update()
                    .where(provider_ledger.c.reference == reference)
                    .values(
                        outcome=result.outcome,
                        failure_code=result.failure_code,
                        amount=amount,
                        currency=currency,
                        account_last4=account[-4:],
                        executed_at=sa.func.now(),
                    )
                )
        if timed_out:
            raise ProviderTimeout(f"provider timed out for reference {reference}")
        return result

    async def _record(
        self, reference: str, amount: Decimal, currency: str, account: str
    ) -> ProviderResult:
        """The common call: the first call's decision is recorded, a later call counts itself
        and gets the recorded result back. Concurrent calls share one statement."""
        call = _Call(reference, self._decide(account), amount, currency, account[-4:])
        return await self._records.submit(call)

    async def _record_all(self, calls: Sequence[_Call]) -> list[ProviderResult]:
        params = {
            "references": [c.reference for c in calls],
            "outcomes": [c.decided.outcome for c in calls],
            "failure_codes": [c.decided.failure_code for c in calls],
            "amounts": [c.amount for c in calls],
            "currencies": [c.currency for c in calls],
            "accounts_last4": [c.account_last4 for c in calls],
        }
        async with autocommit(self._engine) as conn:
            rows = (await conn.execute(_RECORD, params)).all()
        results = {
            row.reference: ProviderResult(row.outcome, row.failure_code, replayed=row.existed)
            for row in rows
        }
        return [results[c.reference] for c in calls]

    async def void(self, reference: str, failure_code: str) -> ProviderResult:
        """Close the reference: a reference with no result yet gets a failure and can never
        pay afterwards; one that already has a result keeps it. Returns the final result."""
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(provider_ledger)
                .values(reference=reference, calls=0)
                .on_conflict_do_nothing(index_elements=[provider_ledger.c.reference])
            )
            row = (
                await conn.execute(
                    provider_ledger.update()
                    .where(provider_ledger.c.reference == reference)
                    .values(
                        outcome=sa.func.coalesce(provider_ledger.c.outcome, FAILED),
                        failure_code=sa.case(
                            (provider_ledger.c.outcome.is_(None), failure_code),
                            else_=provider_ledger.c.failure_code,
                        ),
                    )
                    .returning(provider_ledger.c.outcome, provider_ledger.c.failure_code)
                )
            ).one()
        return ProviderResult(row.outcome, row.failure_code, replayed=True)
