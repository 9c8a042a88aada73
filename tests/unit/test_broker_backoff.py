"""The broker connection's reconnect wait grows with the outage, within bounds."""

from __future__ import annotations

import time

from yarl import URL

from payout_core.messaging.broker import BackoffRobustConnection


async def test_reconnect_wait_grows_with_the_outage_up_to_the_cap():
    connection = BackoffRobustConnection(
        URL("amqp://guest:guest@127.0.0.1:1/?reconnect_interval=3")
    )
    assert connection.reconnect_interval == BackoffRobustConnection.FIRST_RETRY_S  # connected
    connection._lost_at = time.monotonic()
    assert connection.reconnect_interval == BackoffRobustConnection.FIRST_RETRY_S
    connection._lost_at = time.monotonic() - 1.5
    assert 1.5 <= connection.reconnect_interval < 2.0
    connection._lost_at = time.monotonic() - 60
    assert connection.reconnect_interval == 3.0  # the URL's reconnect_interval is the cap
