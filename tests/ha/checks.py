"""How many payouts the provider executed more than once: the one place that says how it is
counted. Executions are counted in the simulated provider's own database (every execution is
its own row there), never in our rows."""

from __future__ import annotations

from collections import Counter

import asyncpg

from tests.support.polling import eventually
from tests.support.provider import executions

# The provider's books are on the machine's PostgreSQL, which other suites share: its
# connection slots can all be taken for a while (max_connections).
SLOTS_TIMEOUT_S = 120.0


async def executed_twice(provider_database_url: str) -> int:
    async def counted() -> tuple[Counter[str]] | None:
        try:
            return (await executions(provider_database_url),)
        except asyncpg.TooManyConnectionsError:
            return None

    (counts,) = await eventually(
        counted, timeout=SLOTS_TIMEOUT_S, interval=1.0, what="a connection to count executions"
    )
    return sum(1 for count in counts.values() if count > 1)
