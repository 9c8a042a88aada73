import base64
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from payout_api.pagination import NEXT, BadCursor, Cursor


def test_cursor_round_trip():
    cursor = Cursor(NEXT, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["", "abc", "!!!", "WyJ4IiwxLDJd"])
def test_bad_cursors(text):
    with pytest.raises(BadCursor):
        Cursor.decode(text)


def _encoded(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


GOOD = ["n", "2026-01-02T03:04:05+00:00", "6f1c1d1e-0000-4000-8000-000000000000"]


@pytest.mark.parametrize(
    "value",
    [
        {"n": 1, "a": 2, "b": 3},
        ["n", "2026-01-02T03:04:05+00:00", ["6f1c1d1e-0000-4000-8000-000000000000"]],
        ["n", "2026-01-02T03:04:05+00:00", {"hex": "x"}],
        ["n", 1767322800, GOOD[2]],
        [["n"], GOOD[1], GOOD[2]],
        [{"n": 1}, GOOD[1], GOOD[2]],
        ["n", None, GOOD[2]],
        ["n", GOOD[1], 123],
        [*GOOD, "extra"],
        GOOD[:2],
        "n",
        None,
        12,
    ],
)
def test_cursors_with_fields_of_the_wrong_json_types_are_bad_cursors(value):
    with pytest.raises(BadCursor):
        Cursor.decode(_encoded(value))


def test_a_well_formed_tampered_cursor_decodes():
    assert Cursor.decode(_encoded(GOOD)).direction == NEXT
