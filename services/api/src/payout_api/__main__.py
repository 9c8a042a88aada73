"""`payout-api`: serve the REST API on API_HOST:API_PORT until SIGTERM/SIGINT, in one process
or in API_WORKERS processes sharing the port."""

from __future__ import annotations

import uvloop

from payout_api.app import create_app
from payout_api.server import serve as serve_app
from payout_api.workers import run_workers
from payout_core import tracing
from payout_core.cli import parse_service_args
from payout_core.logging import configure_logging, get_logger
from payout_core.settings import Settings, load_or_exit


def serve(settings: Settings) -> None:
    log = get_logger("payout_api")
    # Here, in the process that serves (each worker after the fork): the SDK runs a thread.
    traced = tracing.configure(tracing.SERVICE_API)
    log.info("api_starting", host=settings.bind_host, port=settings.api_port, tracing=traced)
    try:
        uvloop.run(
            serve_app(
                create_app(settings),
                host=settings.bind_host,
                port=settings.api_port,
                shutdown_timeout=settings.shutdown_grace_s,
                reuse_port=settings.api_workers > 1,
            )
        )
    finally:
        tracing.shutdown()  # exports the spans still buffered
    log.info("api_stopped")


def main(argv: list[str] | None = None) -> None:
    parse_service_args("payout-api", __doc__, "payout-api", argv)
    settings = load_or_exit()
    configure_logging("api", settings.log_level, settings.log_format)
    if settings.api_workers == 1:
        serve(settings)
        return
    raise SystemExit(run_workers(settings.api_workers, lambda: serve(settings)))


if __name__ == "__main__":
    main()
