"""`payout-processor`: consume payouts until SIGTERM/SIGINT, then drain and exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import uvloop

from payout_core import tracing
from payout_core.cli import parse_service_args
from payout_core.logging import configure_logging, get_logger
from payout_core.runtime import settle_garbage_collector
from payout_core.settings import Settings, load_or_exit
from payout_processor.wiring import bootstrap


async def run(settings: Settings) -> None:
    log = get_logger("payout_processor")
    service = bootstrap(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(service.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # a signal while still waiting for the broker
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
    elif starting.exception() is not None:
        raise starting.exception()  # type: ignore[misc]  # not None: the elif just checked it
    else:
        log.info("garbage_collector_settled", **settle_garbage_collector())
        await stopping
    log.info("processor_stopping")
    await service.stop()


def main(argv: list[str] | None = None) -> None:
    parse_service_args("payout-processor", __doc__, "payout-processor", argv)
    settings = load_or_exit()
    configure_logging("processor", settings.log_level, settings.log_format)
    tracing.configure(tracing.SERVICE_PROCESSOR)
    try:
        uvloop.run(run(settings))
    finally:
        tracing.shutdown()  # exports the spans still buffered


if __name__ == "__main__":
    main()
