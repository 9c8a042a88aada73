"""payout-admin's command line: durations, required options and scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payout_core import admin, clients


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("1h30m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("0", timedelta(0)),
    ],
)
def test_durations(text, expected):
    assert admin.parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "1x", "-1h", "1.5h", "24h ", "400d", "1h-"])
def test_bad_durations_are_usage_errors(text, capsys):
    with pytest.raises(SystemExit) as exited:
        admin.build_parser().parse_args(["roll-key", "acme", f"--expire-old-after={text}"])
    assert exited.value.code == 2
    assert "invalid duration" in capsys.readouterr().err


def test_roll_key_needs_the_overlap():
    with pytest.raises(SystemExit):
        admin.build_parser().parse_args(["roll-key", "acme"])


def test_a_bad_scope_is_a_usage_error():
    with pytest.raises(SystemExit):
        admin.build_parser().parse_args(["create-key", "acme", "--scope", "admin"])
    assert admin.build_parser().parse_args(["create-key", "acme"]).scope == clients.WRITE
