"""Which webhook destinations are refused, and the webhook settings' parsing."""

from __future__ import annotations

import pytest

from payout_core.messaging.contracts import MalformedMessage
from payout_core.settings import ConfigError, Settings
from payout_core.webhooks.queues import DeliveryOrder
from payout_core.webhooks.urls import UnsafeUrl, check_url, forbidden_address

FERNET_KEY = "Vh0Q1y6f2zjvH1k2b3u4n5m6p7q8r9s0t1u2v3w4x5Y="


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("224.0.0.1", True),  # multicast
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00:ec2::254", True),  # AWS metadata over IPv6
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_forbidden_addresses(address, forbidden):
    assert forbidden_address(address) is forbidden


@pytest.mark.parametrize(
    "url", ["http://example.com/", "https://", "https://u:p@example.com/", "https://x/#f", "x"]
)
def test_urls_refused_by_syntax(url):
    with pytest.raises(UnsafeUrl):
        check_url(url, allow_private=False)


def test_allowing_private_urls_admits_http():
    assert check_url("http://127.0.0.1:9/h", allow_private=True)
    with pytest.raises(UnsafeUrl):
        check_url("ftp://127.0.0.1/h", allow_private=True)


def test_webhook_settings_defaults_and_parsing():
    defaults = Settings.from_env({})
    assert defaults.webhook_retry_schedule_s == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert (defaults.webhook_timeout_s, defaults.webhook_disable_after_s) == (10.0, 432_000.0)
    assert defaults.webhook_allow_private_urls is False
    assert defaults.webhook_secret_key is None
    parsed = Settings.from_env(
        {"WEBHOOK_RETRY_SCHEDULE_S": "1,1.5,1", "WEBHOOK_SECRET_KEY": f"{FERNET_KEY},{FERNET_KEY}"}
    )
    assert parsed.webhook_retry_schedule_s == (1.0, 1.5, 1.0)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("WEBHOOK_RETRY_SCHEDULE_S", "5,,300"),
        ("WEBHOOK_RETRY_SCHEDULE_S", "0"),
        ("WEBHOOK_RETRY_SCHEDULE_S", "-1"),
        ("WEBHOOK_SECRET_KEY", "not-a-key"),
        ("WEBHOOK_SECRET_KEY", f"{FERNET_KEY},short"),
        ("WEBHOOK_ALLOW_PRIVATE_URLS", "yes please"),
        ("WEBHOOK_EVENT_RETENTION_S", "86400"),  # events are kept 30 days at least
    ],
)
def test_bad_webhook_settings_name_the_variable(name, raw):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: raw})


def test_delivery_orders_round_trip_and_bad_bodies_are_malformed():
    import uuid

    order = DeliveryOrder(uuid.uuid4(), uuid.uuid4())
    assert DeliveryOrder.from_body(order.to_body()) == order
    fan_out = DeliveryOrder(uuid.uuid4())
    assert DeliveryOrder.from_body(fan_out.to_body()) == fan_out
    for body in (
        b"",
        b"[]",
        b'{"event_id": "x"}',
        b'{"endpoint_id": "%s"}' % str(uuid.uuid4()).encode(),
    ):
        with pytest.raises(MalformedMessage):
            DeliveryOrder.from_body(body)
