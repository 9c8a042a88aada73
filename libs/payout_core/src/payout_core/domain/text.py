"""What free text (names, descriptions, metadata) may contain.

Recipient names and descriptions travel to banks, statements and operators' screens: control
characters (CR/LF among them) can forge lines in files and logs, and bidirectional overrides
can make a name read differently from what is stored ("Trojan Source").
"""

from __future__ import annotations

import re

# Unicode's control characters (category Cc: C0, DEL and C1), then the explicit embeddings,
# overrides and isolates of the bidirectional algorithm.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CONTROL_MESSAGE = "Must not contain control characters or bidirectional overrides."
BLANK_MESSAGE = "Must not be blank."


def text_error(text: str, *, blank_ok: bool = True) -> str | None:
    """None when the text may be stored as it is, else a message for the client."""
    if _FORBIDDEN.search(text):
        return CONTROL_MESSAGE
    if not blank_ok and text and not text.strip():
        return BLANK_MESSAGE
    return None
