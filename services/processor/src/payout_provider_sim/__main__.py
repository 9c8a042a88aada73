"""`payout-provider-sim`: the simulated payout provider on PROVIDER_SIM_HOST:PROVIDER_SIM_PORT."""

from __future__ import annotations

import uvloop
from aiohttp import web

from payout_core import tracing
from payout_core.logging import configure_logging, get_logger
from payout_core.runtime import settle_garbage_collector
from payout_core.settings import load_or_exit
from payout_provider_sim.app import create_app


def main() -> None:
    settings = load_or_exit()
    configure_logging("provider-sim", settings.log_level, settings.log_format)
    log = get_logger("payout_provider_sim")
    log.info(
        "provider_sim_starting", host=settings.provider_sim_host, port=settings.provider_sim_port
    )
    # Traced like a real provider that honours traceparent: its spans join the payout's trace.
    tracing.configure(tracing.SERVICE_PROVIDER_SIM)
    app = create_app(settings)

    async def settle(_app: web.Application) -> None:  # after the app's own start-up
        log.info("garbage_collector_settled", **settle_garbage_collector())

    app.on_startup.append(settle)
    try:
        web.run_app(
            app,
            host=settings.provider_sim_host,
            port=settings.provider_sim_port,
            print=None,
            access_log=None,
            shutdown_timeout=5,
            loop=uvloop.new_event_loop(),  # as the API and the processor run
        )
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
