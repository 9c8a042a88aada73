"""End-to-end fixtures: the console scripts as real processes (API, processor and the
simulated provider) on a database and vhost of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.infra import Infra
from tests.support.processes import Service, api_service, processor_service, provider_service
from tests.support.tcp_proxy import Tap, TcpProxy

BOOTSTRAP_KEY = "sk_e2e_bootstrap_key_0123456789"


@dataclass
class Stack:
    infra: Infra
    env: dict[str, str]
    log_dir: Path
    api: Service
    processor: Service
    provider: Service
    key: str = BOOTSTRAP_KEY
    started: list[Service] = field(default_factory=list)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def new_processor(self, name: str, **env: str) -> Service:
        """Another processor (not started); the fixture stops it at the end."""
        service = processor_service({**self.env, **env}, self.log_dir, name)
        self.started.append(service)
        return service

    def restart_provider(self, **env: str) -> Service:
        """Stop the simulated provider and start it again on the same port with env added."""
        assert self.provider.stop() == 0
        self.provider = self.provider.restarted(**env)
        self.started.append(self.provider)
        return self.provider.start()

    def new_api(self, name: str, **env: str) -> Service:
        """Another API process (not started); the fixture stops it at the end."""
        service = api_service({**self.env, **env}, self.log_dir, name)
        self.started.append(service)
        return service


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[..., TcpProxy]]:
    """A factory: a running TcpProxy to the server of a URL (with a tap on each connection,
    when given); all are closed afterwards (after the stack, which depends on them through
    stack_env)."""
    proxies: list[TcpProxy] = []

    def make(url: str, tap: Callable[[], Tap] | None = None) -> TcpProxy:
        proxies.append(TcpProxy.to_url(url, tap).start())
        return proxies[-1]

    yield make
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def database_proxy(fresh_infra: Infra, tcp_proxy: Callable[[str], TcpProxy]) -> TcpProxy:
    """A proxy to this test's PostgreSQL. To put it between the stack and the database, a test
    module overrides stack_env with DATABASE_URL=database_proxy.proxied(...)."""
    return tcp_proxy(fresh_infra.database_url)


@pytest.fixture
def broker_proxy(fresh_infra: Infra, tcp_proxy: Callable[[str], TcpProxy]) -> TcpProxy:
    """A proxy to this test's RabbitMQ vhost (see database_proxy)."""
    return tcp_proxy(fresh_infra.amqp_url)


@pytest.fixture
def stack_env(fresh_infra: Infra) -> dict[str, str]:
    return fresh_infra.env(API_BOOTSTRAP_KEY=BOOTSTRAP_KEY)


STACK = pytest.StashKey["Stack"]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A failed test's report ends with each service's last log lines: what the processes
    did is often the only clue to a failure seen once, on CI."""
    report = yield
    stack = item.stash.get(STACK, None)
    if report.failed and stack is not None:
        for service in stack.started:
            report.sections.append((f"{service.log_path.name}, last lines", service.log_tail(60)))
    return report


@pytest.fixture
def stack(
    request: pytest.FixtureRequest, fresh_infra: Infra, stack_env: dict[str, str], tmp_path: Path
) -> Iterator[Stack]:
    """Simulated provider + API + processor running; all are stopped (SIGTERM) afterwards
    and must exit 0."""
    provider = provider_service(fresh_infra.env(), tmp_path)
    env = {"PROVIDER_URL": provider.url, **stack_env}
    api = api_service(env, tmp_path)
    processor = processor_service(env, tmp_path)
    started = [provider, api, processor]
    # Started together, then each awaited: none needs another ready to become ready itself
    # (a processor calls the provider only for a payout), and starting is most of a test's time.
    for service in started:
        service.start(wait_ready=False)
    try:
        for service in started:
            service.wait_ready()
    except BaseException:
        for service in started:
            service.stop()
        raise
    stack = Stack(fresh_infra, env, tmp_path, api, processor, provider, started=started)
    request.node.stash[STACK] = stack
    yield stack
    # Every service stops with exit 0 on SIGTERM, and one that ended during the test must have
    # been killed by it: a crash mid-test fails the test even if nothing else noticed.
    ran = [s for s in stack.started if s.proc is not None]
    for service in ran:
        if not service.killed:
            service.terminate()
    codes = {s.log_path.name: s.stop() for s in ran if not s.killed}
    failed = {name: code for name, code in codes.items() if code != 0}
    assert failed == {}, (failed, [s.log_tail() for s in ran if s.log_path.name in failed])
