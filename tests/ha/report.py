"""The one table `make test-ha` prints (and docs/reliability.md shows)."""

from __future__ import annotations

from tests.ha.client import NO_ANSWER
from tests.ha.scenarios import Outcome

HEADER = (
    "| scenario | accepted | payouts/s | client-visible errors (status: count) | gave up "
    "| lost | executed twice | failed by outage | errors for (s) | recovered in (s) |"
)


def _errors(outcome: Outcome) -> str:
    counts = outcome.errors
    if not counts:
        return "none"
    label = {NO_ANSWER: "no answer"}
    return ", ".join(f"{label.get(s, s)}: {n}" for s, n in sorted(counts.items()))


def table(outcomes: list[Outcome]) -> str:
    lines = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    for o in outcomes:
        lines.append(
            f"| {o.name} | {len(o.record.accepted)} | {o.record.rate:.0f} | {_errors(o)} "
            f"| {o.gave_up} | {o.lost} | {o.executed_twice} | {o.failed_by_outage} "
            f"| {o.error_window_s:.1f} | {o.recover_s:.1f} |"
        )
    notes = [f"- {o.name}: {note}" for o in outcomes for note in o.notes]
    return "\n".join(lines + (["", *notes] if notes else []))
