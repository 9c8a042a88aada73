"""Shared fixtures: the suite works in databases and vhosts of its own, never `make run`'s."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from payout_core.clients import create_client
from payout_core.db.engine import create_engine
from payout_core.db.migrate import upgrade
from payout_core.settings import Settings
from tests.support import infra as infra_mod
from tests.support.fuzz_seed import FUZZ_SEED
from tests.support.infra import Infra
from tests.support.provider import provider_in_process
from tests.support.webhook_receiver import Receiver as WebhookReceiver


def pytest_report_header() -> str:
    return f"fuzzing seed: FUZZ_SEED={FUZZ_SEED} (set it to replay this run's schemathesis cases)"


# The real clusters of tests/ha run only under `make test-ha` (minutes, root, own servers).
collect_ignore = [] if os.environ.get("PAYOUTS_TEST_HA") == "1" else ["ha"]
# The soak tier (marker `soak`: the full-length outages, the long housekeeping soak) runs only
# under `make test-soak`; `make test` and a plain `pytest` leave it out, saying so.
SOAK = os.environ.get("PAYOUTS_TEST_SOAK") == "1"


# Under pytest-xdist (`make test -n N`), a test file stays on one worker (its module fixtures
# are built once), and the tests that start service stacks (the e2e tier, the contract and
# protocol tests that run the real processes) share one lane: each stack opens pools of
# PostgreSQL connections, and several at once would exceed the server's max_connections. The
# images' test runs its containers beside them, on its own.
STACK_LANE = ("tests/e2e/", "tests/contract/", "tests/hostile/test_protocol.py")
OWN_LANE = ("tests/e2e/test_images.py",)


def xdist_lane(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    if path.startswith(STACK_LANE) and path not in OWN_LANE:
        return "service stacks"
    return path


class _XdistLanes:
    """Registered only where pytest-xdist is active (`-p no:xdist` knows no such hook)."""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
        from xdist.scheduler import LoadScopeScheduling

        class ByLane(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return xdist_lane(nodeid)

        return ByLane(config, log)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistLanes(), "xdist-lanes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SOAK:
        return
    soak = [item for item in items if item.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    return None if SOAK else "soak tests left out (make test-soak runs them)"


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from (fast CREATE ... TEMPLATE)."""
    name = infra_mod.unique_name("payouts_tmpl")
    url = infra_mod.create_database(name)
    upgrade(url)
    yield name
    infra_mod.drop_database(name)


@pytest.fixture(scope="session")
def session_infra(template_db: str) -> Iterator[Infra]:
    infra = infra_mod.make_infra(template_db)
    yield infra
    infra_mod.remove_infra(infra)


@pytest.fixture
def fresh_infra(template_db: str) -> Iterator[Infra]:
    """A database and vhost for this test alone (for tests that count rows or messages)."""
    infra = infra_mod.make_infra(template_db)
    yield infra
    infra_mod.remove_infra(infra)


@pytest.fixture
async def provider_sim(fresh_infra: Infra) -> AsyncIterator[str]:
    """The simulated provider for this test's infra, in-process; its URL (fresh_infra.env()
    points processors at it from here on)."""
    async with provider_in_process(fresh_infra) as url:
        yield url


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver on a free local port, answering 200 unless told otherwise."""
    started = await WebhookReceiver().start()
    yield started
    await started.stop()


@pytest.fixture
def settings(session_infra: Infra) -> Settings:
    return Settings.from_env(session_infra.env())


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def new_client_key(engine: AsyncEngine):
    """A factory: a new API client (tenant) and its key."""

    async def make(name: str | None = None) -> str:
        async with engine.begin() as conn:
            return await create_client(conn, name or infra_mod.unique_name("client"))

    return make
