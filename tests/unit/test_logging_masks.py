import json

import pytest
import structlog

from payout_core import logging as logging_module
from payout_core.logging import configure_logging, mask, mask_text


def test_mask_keeps_only_the_last_four():
    assert mask("DE89370400440532013000") == "*" * 18 + "3000"
    assert mask("abc") == "***"


def test_log_lines_mask_accounts_keys_and_url_passwords(capsys):
    configure_logging("test", "info", "json")
    structlog.get_logger().info(
        "hello",
        account="DE89370400440532013000",
        api_key="sk_secret_value_1234",
        url="amqp://guest:s3cret@host:5672/",
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["account"].endswith("3000") and "DE8937" not in line["account"]
    assert line["api_key"].endswith("1234") and "secret" not in line["api_key"]
    assert "s3cret" not in line["url"]
    assert line["service"] == "test" and line["level"] == "info" and "timestamp" in line


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Bearer sk_live_abcdefghijkl9876", "abcdefghijkl", "9876"),
        ("key sk_AbC-123_xyzXYZ0000 rejected", "AbC-123_xyz", "0000"),
        ("account DE89370400440532013000 closed", "DE8937040044", "3000"),
        ("connect amqp://guest:s3cret@rabbit:5672/ failed", "s3cret", "rabbit"),
    ],
)
def test_secrets_inside_free_text_are_masked(text, secret, kept):
    masked = mask_text(text)
    assert secret not in masked and kept in masked


def test_ids_and_timestamps_are_left_alone():
    text = "payout 16629539-097b-4c7b-a355-123456789012 at 2026-11-26T05:29:25.598862Z"
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: BEARER tok_abcdefghijkl9876", "abcdefghijkl"),
        ("key sk_AbC-123_xyzXYZ0000 rejected", "AbC-123_xyz"),
        ("account DE89370400440532013000 closed", "DE8937040044"),
        ("connect amqp://guest:s3cret@rabbit:5672/ failed", "s3cret"),
    ],
)
@pytest.mark.parametrize("position", ["event", "first field", "last field"])
def test_a_secret_in_any_field_of_a_flat_line_is_masked(capsys, text, secret, position):
    """Flat lines are screened for secrets all at once (payout_core.logging._nothing_to_mask):
    a secret in any one of their texts still sends the line through the masking."""
    configure_logging("test", "info", "json")
    fields = {"route": "/api/payouts/{id}/", "status": 200, "path": "/api/payouts/"}
    event = "http_request"
    if position == "event":
        event = text
    elif position == "first field":
        fields = {"detail": text, **fields}
    else:
        fields = {**fields, "detail": text}
    structlog.get_logger().info(event, **fields)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert secret not in line
    assert json.loads(line)["route"] == "/api/payouts/{id}/"


def test_a_line_with_nothing_to_mask_is_written_as_logged(capsys):
    configure_logging("test", "info", "json")
    fields = {
        "method": "GET",
        "route": "/api/payouts/{id}/",
        "path": "/api/payouts/16629539-097b-4c7b-a355-123456789012/",
        "status": 200,
        "duration_ms": 1.2,
        "note": "sk-like but not: skip_ this, bearer-less, DE-89",
    }
    structlog.get_logger().info("http_request", **fields)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert {k: line[k] for k in fields} == fields


@pytest.mark.parametrize(
    "text",
    [
        "Überweisung an DE89370400440532013000 \u2013 ok",  # non-ASCII before and after
        "名前 DE89370400440532013000",
        "\udc80 lone surrogate, then DE89370400440532013000",  # undecodable input echoed
    ],
)
def test_an_iban_beside_non_ascii_text_is_still_found(text):
    masked = mask_text(text)
    assert "DE8937040044" not in masked and masked.endswith(text[text.index("DE89") + 22 :])


def test_non_ascii_letters_and_digits_are_not_taken_for_an_iban():
    # Full-width letters and Arabic-Indic digits: [A-Z] and [0-9] are ASCII only. The screen
    # itself is asked: the masking after it would leave this text alone either way.
    text = "ＤＥ٨٩ and ÄÖ12 and de89"
    assert not logging_module._may_hold_secret(text)
    assert logging_module._may_hold_secret(text + " DE89")


def test_a_secret_field_name_is_caught_after_many_plain_ones(capsys):
    """Plain field names are remembered (a bounded set); a secret-named one never is."""
    configure_logging("test", "info", "json")
    log = structlog.get_logger()
    for i in range(1_500):  # more names than the set keeps
        log.info("noise", **{f"field_{i}": "x"})
    log.info("hello", status="ok", Authorization="Bearer-less-token-value-9876")
    log.info("hello", status="ok", Authorization="Bearer-less-token-value-9876")
    lines = capsys.readouterr().err.strip().splitlines()[-2:]
    for line in lines:
        assert json.loads(line)["Authorization"] == "*" * 24 + "9876"
    assert len(logging_module._PLAIN_KEYS) <= logging_module._PLAIN_KEYS_MAX
    assert "Authorization" not in logging_module._PLAIN_KEYS
