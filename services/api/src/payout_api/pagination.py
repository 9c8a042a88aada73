"""Opaque keyset cursors: (direction, created_at, id) of the row a page starts after."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

NEXT = "n"  # older rows than the position
PREVIOUS = "p"  # newer rows than the position


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Cursor:
    direction: str
    created_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.direction, self.created_at.isoformat(), str(self.id)])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            fields = orjson.loads(raw)
            # A tampered cursor can hold any JSON: check the shape and every type first.
            if not (isinstance(fields, list) and len(fields) == 3):
                raise ValueError("not a list of three")
            direction, created_at, ident = fields
            if not all(isinstance(f, str) for f in fields) or direction not in (NEXT, PREVIOUS):
                raise ValueError("wrong types")
            when = datetime.fromisoformat(created_at)
            if when.tzinfo is None:
                raise ValueError("naive timestamp")
            # OverflowError: an offset that takes the moment out of the timestamp range.
            return cls(direction, when.astimezone(UTC), uuid.UUID(ident))
        except (binascii.Error, ValueError, TypeError, OverflowError, orjson.JSONDecodeError):
            raise BadCursor("Not a cursor returned by this API.") from None


def cursors_around(
    rows: Sequence[Mapping[Any, Any]], cursor: Cursor | None, has_more: bool
) -> tuple[Cursor | None, Cursor | None]:
    """The cursors (next, previous) of the pages beside `rows`, a page in display order
    (newest first) read from `cursor`; has_more: rows lie beyond it in its direction of travel.
    Going back from a cursor, older rows always lie beyond the page; going forward, newer ones
    do whenever there was a cursor."""
    going_back = cursor is not None and cursor.direction == PREVIOUS
    more_older = has_more if not going_back else True
    more_newer = (cursor is not None) if not going_back else has_more
    if not rows:
        return None, None
    first, last = rows[0], rows[-1]
    next_cursor = Cursor(NEXT, last["created_at"], last["id"]) if more_older else None
    previous = Cursor(PREVIOUS, first["created_at"], first["id"]) if more_newer else None
    return next_cursor, previous
