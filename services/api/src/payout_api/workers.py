"""API_WORKERS > 1: forked copies of the API on one port (SO_REUSEPORT), under a parent that
only forwards SIGTERM/SIGINT and waits.

One Python process uses one core at most; the kernel spreads new connections over the
workers. Each worker is a whole API (own pool, relay, metrics): /metrics on the shared port
answers for whichever worker takes the connection, so where per-process metrics matter, run
more replicas instead (one process per container).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable

from payout_core.logging import get_logger

log = get_logger(__name__)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run_workers(count: int, serve: Callable[[], None]) -> int:
    """Fork `count` workers running serve(); the exit code: 0 unless a worker failed."""
    children: set[int] = set()
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            _signal(pid, signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, stop)
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # the worker: default signal handling, then the normal server
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            code = 0
            try:
                serve()
            except BaseException:
                log.exception("api_worker_failed")
                code = 1
            os._exit(code)
        children.add(pid)
    log.info("api_workers_started", workers=count, pids=sorted(children))
    exit_code = 0
    while children:
        pid, status = os.wait()
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and not stopping:
            # A worker died on its own: stop the others and exit, so that the supervisor
            # (systemd, Kubernetes, make run) sees the failure and restarts the service.
            log.error("api_worker_exited", pid=pid, exit_code=code)
            exit_code = exit_code or 1
            stop(signal.SIGTERM, None)
    return exit_code


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)
