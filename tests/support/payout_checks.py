"""What must hold in a test database after any fault, read straight from PostgreSQL: every
payout terminal, every status history legal, and money moved at most once and reported as it
moved, counted as executions in the simulated provider's own database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import groupby, pairwise

import asyncpg

from payout_core.domain.status import ALLOWED_TRANSITIONS, PayoutStatus
from tests.support.infra import provider_database_url
from tests.support.polling import eventually

UNFINISHED = (PayoutStatus.PENDING.value, PayoutStatus.PROCESSING.value)
# The statuses nothing leaves.
TERMINAL = frozenset(PayoutStatus) - {current for current, _ in ALLOWED_TRANSITIONS}
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

    try:
        return await eventually(
            all_terminal, timeout=timeout, interval=0.25, what=f"{expected} terminal payouts"
        )
    except AssertionError as exc:  # where they are stuck: not yet published, or not processed
        counts = await status_counts(database_url)
        outbox = await fetch(database_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        where = f"statuses {dict(counts)}, outbox rows unpublished {outbox[0][0]}"
        raise AssertionError(f"{exc}: {where}") from None


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


@dataclass(frozen=True)
class Transfer:
    """One row of the simulated provider's books: an execution (executed) or a decline."""

    reference: str
    status: str
    failure_code: str | None
    amount: Decimal


@dataclass(frozen=True)
class Payout:
    status: str
    failure_code: str | None
    amount: Decimal


def provider_violations(payouts: Mapping[str, Payout], transfers: Iterable[Transfer]) -> list[str]:
    """The provider's books against the payouts, counting executions (not rows of ours):
    a processed payout executed exactly once at its amount; a failed one never executed (and,
    unless given up on, declined there with its code); nothing for cancelled payouts or
    references that are no payout; no payout left unfinished."""
    by_reference: dict[str, list[Transfer]] = {}
    for transfer in transfers:
        by_reference.setdefault(transfer.reference, []).append(transfer)
    problems = [
        f"{reference}: transfers for a payout that does not exist"
        for reference in sorted(set(by_reference) - set(payouts))
    ]
    for payout_id, payout in sorted(payouts.items()):
        problem = _provider_problem(payout, by_reference.get(payout_id, []))
        if problem:
            problems.append(f"{payout_id}: {problem}")
    return problems


def _provider_problem(payout: Payout, transfers: list[Transfer]) -> str | None:
    executed = [t for t in transfers if t.status == "executed"]
    if len(executed) > 1:
        return f"executed {len(executed)} times at the provider"
    status = payout.status
    if status == PayoutStatus.PROCESSED.value:
        if not executed:
            return "processed, but never executed at the provider"
        if executed[0].amount != payout.amount:
            return f"processed {payout.amount}, executed {executed[0].amount}"
    elif status in (PayoutStatus.FAILED.value, PayoutStatus.CANCELLED.value) and executed:
        return f"{status}, but executed at the provider"
    elif status == PayoutStatus.FAILED.value and payout.failure_code != GIVEN_UP:
        codes = [t.failure_code for t in transfers]
        if payout.failure_code not in codes:
            return f"failed {payout.failure_code}, but the provider declined with {codes}"
    elif status == PayoutStatus.CANCELLED.value and transfers:
        return "cancelled, but sent to the provider"
    elif PayoutStatus(status) not in TERMINAL:
        return f"still {status}"
    return None


async def provider_problems(database_url: str) -> list[str]:
    rows = await fetch(database_url, "SELECT id::text, status, failure_code, amount FROM payouts")
    transfers = await fetch(
        provider_database_url(database_url),
        "SELECT reference, status, failure_code, amount FROM transfers ORDER BY id",
    )
    return provider_violations(
        {row["id"]: Payout(row["status"], row["failure_code"], row["amount"]) for row in rows},
        [Transfer(*row) for row in transfers],
    )


async def repeated_calls(database_url: str) -> int:
    """References the provider decided more than once (declines and executions): retries
    after lost answers show here; executions more than once fail provider_problems."""
    rows = await fetch(
        provider_database_url(database_url),
        "SELECT count(*) FROM (SELECT reference FROM transfers GROUP BY reference "
        "HAVING count(*) > 1) AS repeated",
    )
    return int(rows[0][0])


async def assert_all_terminal_and_sound(
    database_url: str, expected: Mapping[str, int], timeout: float = 90
) -> None:
    """The end state every fault test asserts: all payouts terminal with these counts, every
    status history legal, and the provider's executions agreeing with the payouts."""
    counts = await wait_all_terminal(database_url, sum(expected.values()), timeout=timeout)
    assert counts == expected, counts
    history = await history_problems(database_url)
    assert history == [], history[:10]
    provider = await provider_problems(database_url)
    assert provider == [], provider[:10]
