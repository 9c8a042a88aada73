"""What must hold in a test database after any fault, read straight from PostgreSQL: every
payout terminal, every status history legal, and money moved at most once and reported as it
moved."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import groupby, pairwise

import asyncpg

from payout_core.domain.status import ALLOWED_TRANSITIONS, TERMINAL, PayoutStatus
from tests.support.polling import eventually

UNFINISHED = (PayoutStatus.PENDING.value, PayoutStatus.PROCESSING.value)
GIVEN_UP = "processing_error"


async def fetch(database_url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def status_counts(database_url: str) -> Counter[str]:
    rows = await fetch(database_url, "SELECT status, count(*) AS n FROM payouts GROUP BY status")
    return Counter({row["status"]: row["n"] for row in rows})


async def wait_all_terminal(database_url: str, expected: int, timeout: float) -> Counter[str]:
    """Wait until the database holds `expected` payouts, all in a terminal status."""

    async def all_terminal() -> Counter[str] | None:
        counts = await status_counts(database_url)
        done = sum(n for status, n in counts.items() if status not in UNFINISHED)
        return counts if done == expected == counts.total() else None

    return await eventually(
        all_terminal, timeout=timeout, interval=0.25, what=f"{expected} terminal payouts"
    )


def history_violations(
    events: Iterable[tuple[str, str | None, str]], final: Mapping[str, str]
) -> list[str]:
    """Each payout's events, in order, must start None -> pending, chain (each `from` is the
    previous `to`), use allowed transitions only and end in the payout's status."""
    events = list(events)
    problems: list[str] = []
    for payout_id, group in groupby(events, key=lambda event: event[0]):
        steps = [(from_, to) for _, from_, to in group]
        if steps[0] != (None, PayoutStatus.PENDING.value):
            problems.append(f"{payout_id}: starts with {steps[0]}")
        for (_, previous_to), (from_, to) in pairwise(steps):
            if from_ != previous_to:
                problems.append(f"{payout_id}: {from_} -> {to} after reaching {previous_to}")
            elif (PayoutStatus(from_), PayoutStatus(to)) not in ALLOWED_TRANSITIONS:
                problems.append(f"{payout_id}: illegal {from_} -> {to}")
        if steps[-1][1] != final.get(payout_id):
            problems.append(f"{payout_id}: ends {steps[-1][1]}, payout is {final.get(payout_id)}")
    missing = set(final) - {payout_id for payout_id, _, _ in events}
    problems.extend(f"{payout_id}: no history" for payout_id in sorted(missing))
    return problems


async def history_problems(database_url: str) -> list[str]:
    events = await fetch(
        database_url,
        "SELECT payout_id::text, from_status, to_status FROM payout_events ORDER BY payout_id, id",
    )
    payouts = await fetch(database_url, "SELECT id::text, status FROM payouts")
    return history_violations(
        [tuple(row) for row in events], {row["id"]: row["status"] for row in payouts}
    )


async def ledger_problems(database_url: str) -> list[str]:
    """The provider's ledger against the payouts: money moved (outcome succeeded) exactly for
    the processed ones, at their amount; provider failures recorded as such; a payout given up
    on (processing_error) voided, never executed; nothing for cancelled or unknown payouts."""
    rows = await fetch(
        database_url,
        """
        SELECT p.id::text AS id, p.status, p.failure_code, p.amount,
               l.reference, l.outcome, l.failure_code AS ledger_code,
               l.amount AS ledger_amount, l.executed_at
        FROM payouts p FULL JOIN provider_ledger l ON l.reference = p.id::text
        """,
    )
    problems = []
    for row in rows:
        problem = _ledger_problem(row)
        if problem:
            problems.append(f"{row['id'] or row['reference']}: {problem}")
    return problems


def _ledger_problem(row: Mapping) -> str | None:
    status, outcome, executed = row["status"], row["outcome"], row["executed_at"] is not None
    if status is None:
        return "ledger entry for a payout that does not exist"
    if status == PayoutStatus.PROCESSED.value:
        if outcome != "succeeded" or not executed or row["ledger_amount"] != row["amount"]:
            return f"processed, but the ledger says {outcome} {row['ledger_amount']}"
    elif status == PayoutStatus.FAILED.value and row["failure_code"] == GIVEN_UP:
        if outcome != "failed" or executed:
            return f"given up, but the ledger says {outcome} executed={executed}"
    elif status == PayoutStatus.FAILED.value:
        if outcome != "failed" or row["ledger_code"] != row["failure_code"] or not executed:
            return f"failed {row['failure_code']}, but the ledger says {outcome}"
    elif status == PayoutStatus.CANCELLED.value and outcome is not None:
        return f"cancelled, but the ledger says {outcome}"
    elif PayoutStatus(status) not in TERMINAL:
        return f"still {status}"
    return None


async def replayed_references(database_url: str) -> int:
    """How many references the provider saw more than once (redeliveries, retries, crashes)."""
    rows = await fetch(database_url, "SELECT count(*) AS n FROM provider_ledger WHERE calls > 1")
    return int(rows[0]["n"])


async def assert_all_terminal_and_sound(
    database_url: str, expected: Mapping[str, int], timeout: float = 90
) -> None:
    """The end state every fault test asserts: all payouts terminal with these counts, every
    status history legal, and the provider's ledger agreeing with the payouts."""
    counts = await wait_all_terminal(database_url, sum(expected.values()), timeout=timeout)
    assert counts == expected, counts
    history = await history_problems(database_url)
    assert history == [], history[:10]
    ledger = await ledger_problems(database_url)
    assert ledger == [], ledger[:10]
