"""`payout-api`: serve the REST API on API_HOST:API_PORT until SIGTERM/SIGINT."""

from __future__ import annotations

import uvloop
from aiohttp import web

from payout_api.app import create_app
from payout_core.logging import configure_logging, get_logger
from payout_core.settings import load_or_exit


def main() -> None:
    settings = load_or_exit()
    configure_logging("api", settings.log_level, settings.log_format)
    log = get_logger("payout_api")
    log.info("api_starting", host=settings.api_host, port=settings.api_port)
    web.run_app(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        shutdown_timeout=settings.shutdown_grace_s,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
    log.info("api_stopped")


if __name__ == "__main__":
    main()
