"""API_WORKERS: forked API processes on one port, started on a fresh database at once."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.support.infra import Infra
from tests.support.load import create_payouts
from tests.support.processes import api_service

pytestmark = pytest.mark.e2e
KEY = "sk_e2e_workers_key_0123456789"


async def test_two_workers_serve_one_port_and_stop_with_exit_0(fresh_infra: Infra, tmp_path: Path):
    # Both workers create the bootstrap client on the empty database at the same moment.
    api = api_service(fresh_infra.env(API_BOOTSTRAP_KEY=KEY, API_WORKERS="2"), tmp_path)
    api.start()
    try:
        assert api.proc is not None
        workers = psutil.Process(api.proc.pid).children()
        assert len(workers) == 2, api.log_tail()
        load = await create_payouts(
            [api.url], {"Authorization": f"Bearer {KEY}"}, count=200, concurrency=16
        )
        assert load.statuses == {201: 200}, load.not_problems[:5]
        assert all(w.is_running() for w in workers)
    finally:
        assert api.stop() == 0, api.log_tail()
