"""No statement can write a status change the machine forbids: the status-changing statements
are read back out of their SQL and checked against ALLOWED_TRANSITIONS, and no other module
writes a payout's status."""

import ast
import itertools
import re
from pathlib import Path

import pytest

from payout_api.adapters import payout_repository
from payout_core.db import transitions
from payout_core.domain.status import ALLOWED_TRANSITIONS, INITIAL, PayoutStatus

S = PayoutStatus
ROOT = Path(__file__).resolve().parents[2]
STATEMENTS = {
    "create": transitions.create_ctes(claimed=False),
    "create with a claimed key": transitions.create_ctes(claimed=True),
    "create (API)": str(payout_repository.INSERT_CREATED),
    "create with a key (API)": str(payout_repository.INSERT_CREATED_WITH_KEY),
    "start processing": str(transitions.START),
    "finish processing": str(transitions.FINISH),
}
_EVENT = re.compile(
    r"INSERT INTO payout_events \(payout_id, from_status, to_status, reason, request_id\)"
    r"\s+SELECT id, (?P<from>[^,]+), (?P<to>[^,]+),"
)
_LITERAL = re.compile(r"^'([a-z_]+)'$")


def _status(expression: str) -> PayoutStatus | None:
    if expression == "NULL":
        return None
    literal = _LITERAL.match(expression)
    assert literal, f"not a status literal: {expression}"
    return PayoutStatus(literal.group(1))


def _statuses_in(sql: str, expression: str) -> set[PayoutStatus]:
    """The statuses an expression of the statement can hold: a literal, or a column the
    statement restricts with `expression IN (literals)`."""
    if _LITERAL.match(expression):
        return {PayoutStatus(_LITERAL.match(expression).group(1))}  # type: ignore[union-attr]
    restriction = re.search(re.escape(expression) + r" IN \(([^)]*)\)", sql)
    assert restriction, f"{expression} is written unrestricted"
    return {_status(item.strip()) for item in restriction.group(1).split(",")}  # type: ignore[misc]


def _changes(sql: str) -> set[tuple[PayoutStatus | None, PayoutStatus]]:
    """The (from, to) pairs a statement writes, read from its SQL: the history row it inserts,
    which must match the status it sets and the status it requires."""
    event = _EVENT.search(sql)
    assert event, "no history row written"
    from_status = _status(event.group("from").strip())
    to_statuses = _statuses_in(sql, event.group("to").strip())
    if from_status is None:
        inserted = re.search(
            r"INSERT INTO payouts \(([^)]*)\)\s+SELECT ([^;]*?)\n\s*(?:FROM|RETURNING)", sql
        )
        assert inserted
        columns = [c.strip() for c in inserted.group(1).split(",")]
        values = [v.strip() for v in inserted.group(2).split(",")]
        assert {_status(values[columns.index("status")])} == to_statuses
    else:
        assert f"payouts.status = {transitions.sql_literal(from_status)}" in sql
        written = re.search(r"UPDATE payouts SET status = ([^,]+),", sql)
        assert written
        assert _statuses_in(sql, written.group(1).strip()) == to_statuses
    return {(from_status, to) for to in to_statuses}


@pytest.mark.parametrize("name", STATEMENTS)
def test_a_statement_writes_only_changes_the_machine_allows(name):
    for from_status, to_status in _changes(STATEMENTS[name]):
        if from_status is None:
            assert to_status is INITIAL
        else:
            assert (from_status, to_status) in ALLOWED_TRANSITIONS


def test_the_statements_write_what_their_declared_changes_say():
    declared = {
        "create": transitions.CREATE,
        "start processing": transitions.START_PROCESSING,
        "finish processing": transitions.FINISH_PROCESSING,
    }
    for name, change in declared.items():
        expected = {(change.from_status, to) for to in change.to_statuses}
        assert _changes(STATEMENTS[name]) == expected, name


def test_finish_writes_both_ends_of_processing():
    assert _changes(STATEMENTS["finish processing"]) == {
        (S.PROCESSING, S.PROCESSED),
        (S.PROCESSING, S.FAILED),
    }


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        *((None, to) for to in S if to is not INITIAL),
        *(pair for pair in itertools.product(S, S) if pair not in ALLOWED_TRANSITIONS),
    ],
)
def test_a_forbidden_change_cannot_be_declared(from_status, to_status):
    with pytest.raises(ValueError, match=r"illegal transition|a new payout is"):
        transitions.StatusChange(from_status, (to_status,))


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [pair for pair in itertools.product(S, S) if pair not in ALLOWED_TRANSITIONS],
)
async def test_transition_refuses_a_forbidden_change_before_writing(from_status, to_status):
    with pytest.raises(ValueError, match="illegal transition"):
        # No connection: it must refuse before it touches one.
        await transitions.transition(None, None, from_status, to_status, reason="test")  # type: ignore[arg-type]


def _writes_payout_status(tree: ast.AST) -> list[int]:
    """Lines of SQLAlchemy Core statements on `payouts` given a `status` value."""
    lines = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
            and any(k.arg == "status" for k in node.keywords)
        ):
            continue
        base = node.func.value
        while isinstance(base, ast.Call | ast.Attribute):
            if (
                isinstance(base, ast.Attribute)
                and base.attr in ("update", "insert")
                and isinstance(base.value, ast.Name)
                and base.value.id == "payouts"
            ):
                lines.append(node.lineno)
                break
            base = base.func if isinstance(base, ast.Call) else base.value
    return lines


def test_no_other_module_writes_a_payout_status():
    sources = [
        path
        for top in ("services", "libs")
        for path in (ROOT / top).rglob("src/**/*.py")
        if "migrations" not in path.parts
    ]
    assert sources
    writers = []
    for path in sources:
        text = path.read_text()
        relative = path.relative_to(ROOT)
        if path.name == "transitions.py" and path.parent.name == "db":
            assert _writes_payout_status(ast.parse(text)), "transition() no longer found"
            continue
        # Within one statement (no `;` or quote between), with or without a table alias.
        if re.search(r'UPDATE payouts(?: \w+)? SET[^;"]*\bstatus\s*=|INSERT INTO payouts\b', text):
            writers.append(f"{relative}: SQL")
        writers += [f"{relative}:{line}" for line in _writes_payout_status(ast.parse(text))]
    assert writers == []
