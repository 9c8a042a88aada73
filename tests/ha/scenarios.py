"""Running one fault under client load, and what is measured around it."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from tests.ha.checks import executed_twice
from tests.ha.client import ClientRecord, RetryingClient
from tests.ha.stack import API_KEY, HaStack
from tests.support.payout_checks import UNFINISHED, fetch, history_problems
from tests.support.polling import eventually

# Payouts per second the client offers (HA_RATE to change it; issue 12 asks for >= 100).
RATE = float(os.environ.get("HA_RATE", "110"))
LEAD_IN_S = 5.0  # load before the fault
TAIL_S = 5.0  # load after the system recovered
RECOVER_TIMEOUT_S = 180.0
DRAIN_TIMEOUT_S = 240.0


@dataclass
class Outcome:
    name: str
    record: ClientRecord
    fault_at: float
    recovered_at: float
    lost: int = 0
    gave_up: int = 0
    executed_twice: int = 0
    failed_by_outage: int = 0
    history: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def errors(self) -> Counter[int]:
        return self.record.errors_by_status()

    @property
    def recover_s(self) -> float:
        return self.recovered_at - self.fault_at

    @property
    def error_window_s(self) -> float:
        late = [a.at for a in self.record.errors if a.at >= self.fault_at]
        return max(late) - self.fault_at if late else 0.0

    @property
    def sound(self) -> bool:
        return not (
            self.lost
            or self.gave_up
            or self.executed_twice
            or self.failed_by_outage
            or self.history
            or self.record.unexpected
        )


Fault = Callable[[RetryingClient], Awaitable[None]]


async def run_scenario(stack: HaStack, name: str, fault: Fault) -> Outcome:
    """Load, the fault (its blocking steps run in threads: the load goes on), then: wait until
    a payout accepted after the fault is terminal (recovered), a little more load, stop, and
    check every accepted payout."""
    client = RetryingClient([api.url for api in stack.apis], API_KEY, rate=RATE)
    stop = asyncio.Event()
    load = asyncio.create_task(client.run(stop))
    try:
        await asyncio.sleep(LEAD_IN_S)  # the fault must hit a system under load
        fault_at = time.monotonic()
        await fault(client)
        fault_done = time.monotonic()
        recovered_at = await _pipeline_whole_again(stack, client.record, fault_done)
        await asyncio.sleep(TAIL_S)
    finally:
        stop.set()
        record = await load
    outcome = Outcome(name, record, fault_at, recovered_at)
    await _check(stack, outcome)
    return outcome


async def _pipeline_whole_again(stack: HaStack, record: ClientRecord, since: float) -> float:
    """The moment a payout accepted after `since` was found terminal."""

    async def a_fresh_payout_done() -> float | None:
        fresh = [pid for at, pid in record.accepted_at if at > since][:20]
        if not fresh:
            return None
        rows = await _query(
            stack,
            "SELECT count(*) AS n FROM payouts WHERE id::text = ANY($1::text[]) "
            f"AND status NOT IN {UNFINISHED}",
            fresh,
        )
        return time.monotonic() if rows and rows[0]["n"] > 0 else None

    return await eventually(
        a_fresh_payout_done, timeout=RECOVER_TIMEOUT_S, interval=0.25, what="a fresh payout done"
    )


async def _query(stack: HaStack, sql: str, *args: object) -> list | None:
    """A query on the current primary; None while there is none (a failover)."""
    try:
        conn = await asyncpg.connect(stack.database_url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return await conn.fetch(sql, *args, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    finally:
        await conn.close()


async def _check(stack: HaStack, outcome: Outcome) -> None:
    url = stack.database_url

    async def all_terminal() -> bool:
        rows = await _query(
            stack, f"SELECT count(*) AS n FROM payouts WHERE status IN {UNFINISHED}"
        )
        return rows is not None and rows[0]["n"] == 0

    await eventually(all_terminal, timeout=DRAIN_TIMEOUT_S, interval=0.5, what="all terminal")
    ids = list(outcome.record.accepted.values())
    found = await _query(
        stack, "SELECT count(*) AS n FROM payouts WHERE id::text = ANY($1::text[])", ids
    )
    assert found is not None, "the primary did not answer the check"
    outcome.lost = len(ids) - int(found[0]["n"])
    outcome.gave_up = len(outcome.record.gave_up)
    outcome.executed_twice = await executed_twice(stack.provider_database_url)
    # The only failures the load asks for are the provider's no_account ones.
    failed = await fetch(
        url,
        "SELECT count(*) AS n FROM payouts WHERE status = 'failed' "
        "AND failure_code IS DISTINCT FROM 'no_account'",
    )
    outcome.failed_by_outage = int(failed[0]["n"])
    outcome.history = await history_problems(url)
