"""API_WORKERS: forked API processes on one port, started on a fresh database at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from tests.support.infra import Infra
from tests.support.load import create_payouts
from tests.support.polling import eventually
from tests.support.processes import api_service

pytestmark = pytest.mark.e2e
KEY = "sk_e2e_workers_key_0123456789"


async def serving(workers: list[psutil.Process], port: int) -> bool:
    """Every worker has an established connection accepted on the port."""
    return all(
        any(
            c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == port
            for c in worker.net_connections(kind="tcp")
        )
        for worker in workers
    )


async def test_two_workers_serve_one_port_and_stop_with_exit_0(fresh_infra: Infra, tmp_path: Path):
    # Both workers create the bootstrap client on the empty database at the same moment.
    api = api_service(fresh_infra.env(API_BOOTSTRAP_KEY=KEY, API_WORKERS="2"), tmp_path)
    api.start()
    try:
        assert api.proc is not None
        workers = psutil.Process(api.proc.pid).children()
        assert len(workers) == 2, api.log_tail()
        load = asyncio.create_task(
            create_payouts([api.url], {"Authorization": f"Bearer {KEY}"}, count=400, concurrency=16)
        )
        # Both answer: each holds client connections on the shared port during the load.
        await eventually(
            lambda: serving(workers, api.port), timeout=30, what="both workers serving"
        )
        result = await load
        assert result.statuses == {201: 400}, result.not_problems[:5]
        assert all(w.is_running() for w in workers)
    finally:
        assert api.stop() == 0, api.log_tail()
