import uuid
from datetime import UTC, datetime

import pytest

from payout_api.service.pagination import NEXT, BadCursor, Cursor


def test_cursor_round_trip():
    cursor = Cursor(NEXT, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), uuid.uuid4())
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["", "abc", "!!!", "WyJ4IiwxLDJd"])
def test_bad_cursors(text):
    with pytest.raises(BadCursor):
        Cursor.decode(text)
