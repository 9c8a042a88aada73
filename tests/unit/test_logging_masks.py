import json

import structlog

from payout_core.logging import configure_logging, mask


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
