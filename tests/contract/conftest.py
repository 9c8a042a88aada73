"""One payout-api process for the contract tests (docs pages in a browser, fuzzing), started
once for this directory on a database and vhost of its own, exactly as `make run` starts it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.infra import make_infra, remove_infra
from tests.support.processes import Service, api_service

BOOTSTRAP_KEY = "sk_contract_bootstrap_key_0123456789"


@dataclass(frozen=True)
class LiveApi:
    service: Service
    key: str

    @property
    def url(self) -> str:
        return self.service.url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="package")
def live_api(template_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    infra = make_infra(template_db)
    env = infra.env(API_BOOTSTRAP_KEY=BOOTSTRAP_KEY, LOG_LEVEL="warning")
    service = api_service(env, tmp_path_factory.mktemp("contract-api"))
    try:
        service.start()
        yield LiveApi(service, BOOTSTRAP_KEY)
    finally:
        code = service.stop() if service.proc is not None else 0
        remove_infra(infra)
    assert code == 0, service.log_tail()
