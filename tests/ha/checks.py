"""How many payouts the provider executed more than once: the one place that says how it is
counted. Executions are counted in the simulated provider's own database (every execution is
its own row there), never in our rows."""

from __future__ import annotations

from tests.support.provider import executions


async def executed_twice(provider_database_url: str) -> int:
    return sum(1 for count in (await executions(provider_database_url)).values() if count > 1)
