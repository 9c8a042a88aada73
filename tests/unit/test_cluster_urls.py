"""The cluster forms of DATABASE_URL and AMQP_URL: parsing, validation, failover order, and
which database errors mean "unavailable" (503) rather than a bug."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from payout_core.db import dsn
from payout_core.db.engine import _Gate
from payout_core.db.errors import is_database_unavailable
from payout_core.messaging.broker import ClusterConnection
from payout_core.settings import ConfigError, Settings, split_amqp_urls

MULTI = "postgresql://app:s3cret@db-1:5432,db-2:5433,[::1]/payouts?sslmode=disable"


def test_multi_host_database_url_lists_every_node():
    url = dsn.parse(MULTI)
    assert url.hosts == (("db-1", 5432), ("db-2", 5433), ("::1", 5432))
    assert url.database == "payouts" and url.query == {"sslmode": "disable"}
    assert "s3cret" not in repr(url)


def test_a_multi_host_url_asks_for_a_writable_node_unless_it_says_otherwise():
    assert dsn.connect_url(MULTI).endswith("sslmode=disable&target_session_attrs=read-write")
    chosen = MULTI + "&target_session_attrs=primary"
    assert dsn.connect_url(chosen) == chosen
    single = "postgresql://app@db-1:5432/payouts"
    assert dsn.connect_url(single) == single


def test_another_database_on_the_same_nodes():
    assert dsn.parse(MULTI).with_database("postgres") == (
        "postgresql://app:s3cret@db-1:5432,db-2:5433,[::1]/postgres?sslmode=disable"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "mysql://x@h/db",
        "postgresql:///db",
        "postgresql://u@h1:5432,:5433/db",
        "postgresql://u@h1:99999/db",
        "postgresql://u@h1:port/db",
        "postgresql://u@h1,h2/db?target_session_attrs=writable",
    ],
)
def test_bad_database_urls_name_the_variable(raw):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"DATABASE_URL": raw})


def test_settings_take_both_cluster_forms():
    amqp = "amqp://u:p@rmq-0:5672/v, amqp://u:p@rmq-1:5672/v,amqp://u:p@rmq-2:5672/v"
    s = Settings.from_env({"DATABASE_URL": MULTI, "AMQP_URL": amqp})
    assert s.database_url == MULTI
    assert split_amqp_urls(s.amqp_url) == [
        "amqp://u:p@rmq-0:5672/v",
        "amqp://u:p@rmq-1:5672/v",
        "amqp://u:p@rmq-2:5672/v",
    ]


@pytest.mark.parametrize("raw", [",", "amqp://h:5672/,http://h/", "amqp://h:5672/,amqp://h:x/"])
def test_bad_amqp_lists_name_the_variable(raw):
    with pytest.raises(ConfigError, match="AMQP_URL"):
        Settings.from_env({"AMQP_URL": raw})


async def test_every_connection_attempt_goes_to_the_next_node():
    nodes = ["amqp://u:p@n1:5672/", "amqp://u:p@n2:5673/", "amqp://u:p@n3:5674/"]
    connection = ClusterConnection(nodes, first=1)
    seen = []
    for _ in range(4):
        connection.transport = None  # what aio-pika does before each attempt
        seen.append(connection.node)
    assert seen == ["n2:5673", "n3:5674", "n1:5672", "n2:5673"]
    assert connection.url.user == "u" and connection.url.password == "p"


def _driver_error(sqlstate: str) -> DBAPIError:
    orig = asyncpg.PostgresError("message")
    orig.sqlstate = sqlstate  # type: ignore[attr-defined]
    return DBAPIError("INSERT ...", {}, orig)


@pytest.mark.parametrize("sqlstate", ["25006", "57P01", "57P03", "53300", "08006"])
def test_a_standby_or_a_server_going_away_is_unavailable(sqlstate):
    assert is_database_unavailable(_driver_error(sqlstate))


def test_a_driver_error_raised_unwrapped_while_setting_up_a_connection_is_unavailable():
    closed = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    assert is_database_unavailable(closed)
    translated = AsyncAdapt_asyncpg_dbapi.Error(closed.args[0], closed)  # as SQLAlchemy raises it
    assert not isinstance(translated, (DBAPIError, OSError))
    assert is_database_unavailable(translated)


@pytest.mark.parametrize("sqlstate", ["23505", "22P02", "42P01"])
def test_real_bugs_are_not_unavailable(sqlstate):
    assert not is_database_unavailable(_driver_error(sqlstate))


async def test_the_pool_queue_refuses_past_its_bound():
    gate = _Gate(size=1, max_waiting=1)
    async with gate.admit():
        waiter = gate.admit()
        task = asyncio.ensure_future(waiter.__aenter__())
        await asyncio.sleep(0)  # one loop turn: the waiter runs up to its wait
        assert gate.waiting == 1
        with pytest.raises(PoolTimeout, match="already wait"):
            async with gate.admit():
                pass
    await task
    await waiter.__aexit__(None, None, None)
    assert gate.waiting == 0
