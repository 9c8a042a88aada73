import unicodedata

import pytest

from payout_core.domain.text import BLANK_MESSAGE, CONTROL_MESSAGE, text_error


@pytest.mark.parametrize(
    "text",
    ["Jane\nDoe", "Jane\r\nDoe", "Jane\tDoe", "Jane\x1bDoe", "\x7f", "a\x85b", "\u202eeoD enaJ"],
)
def test_control_and_bidi_override_characters_are_refused(text):
    assert text_error(text) == CONTROL_MESSAGE


def test_every_control_character_is_refused():
    controls = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]
    assert len(controls) == 65
    assert all(text_error(f"a{ch}b") == CONTROL_MESSAGE for ch in controls)


@pytest.mark.parametrize(
    "text", ["Jane Doe", "Zoë Ünal", "李小龙", "محمد", "👩‍👩‍👧", "O'Brien-Smith"]
)
def test_ordinary_names_pass(text):
    assert text_error(text, blank_ok=False) is None


@pytest.mark.parametrize("text", [" ", "   ", "\u00a0", "\u3000"])
def test_blank_text_is_refused_where_it_must_say_something(text):
    assert text_error(text, blank_ok=False) == BLANK_MESSAGE
    assert text_error(text) is None
