"""The payout provider as the processor and the reconciler see it, over HTTP.

Every answer is one of three things:
- definite: the transfer executed, or was declined with a code (`Transfer`);
- not found (a lookup's None): no transfer with this reference exists, no money moved;
- in doubt (`ProviderInDoubt`): a timeout, a reset or dropped connection, a 5xx, a 409 (the
  key is busy). The money may or may not have moved; only a later call with the same key or a
  lookup tells. `ProviderUnreachable` is the one case known not to have reached it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import aiohttp
import orjson

from payout_core import tracing
from payout_core.logging import get_logger

log = get_logger(__name__)

EXECUTED = "executed"
DECLINED = "declined"
# A 4xx other than 404/409: the provider refused the request itself; a definite decline.
REJECTED = "provider_rejected"


@dataclass(frozen=True)
class Transfer:
    status: str  # executed | declined
    failure_code: str | None = None
    replayed: bool = False

    @property
    def executed(self) -> bool:
        return self.status == EXECUTED

    @property
    def payout_failure_code(self) -> str | None:
        """None when the money moved; else the code the payout fails with."""
        return None if self.executed else (self.failure_code or "provider_declined")


class ProviderInDoubt(Exception):
    """No definite answer: the transfer may have executed. Retry with the same key, look up."""

    reason = "in_doubt"


class ProviderUnreachable(ProviderInDoubt):
    """The request never reached the provider (connection refused): nothing can have moved."""

    reason = "unreachable"


class ProviderClient:
    """One HTTP session per process, opened on first use (nothing connects at import time)."""

    def __init__(self, base_url: str, timeout_s: float, *, max_connections: int = 100) -> None:
        """max_connections: calls in flight at once (aiohttp's pool; others wait for a
        connection, and that wait counts against timeout_s, so keep it at least the
        caller's own concurrency)."""
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def timeout_s(self) -> float:
        """The longest a call can stay open (the pool's wait included)."""
        return float(self._timeout.total or 0.0)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=self._timeout,
                trace_configs=tracing.http_client_trace_configs(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def transfer(
        self, reference: str, amount: Decimal, currency: str, account: str
    ) -> Transfer:
        """Execute (or replay) the transfer whose idempotency key is `reference`."""
        # The account is masked to its last 4 characters by the logging set-up.
        log.debug("provider_call", reference=reference, currency=currency, account=account)
        body = {
            "reference": reference,
            "amount": str(amount),
            "currency": currency,
            "account": account,
        }
        with tracing.span("provider transfer", attributes={tracing.ATTR_PAYOUT_ID: reference}):
            answer = await self._call(
                "POST",
                "/v1/transfers",
                data=orjson.dumps(body),
                headers={"Idempotency-Key": reference, "Content-Type": "application/json"},
            )
        if answer is None:
            raise ProviderInDoubt(f"provider found no transfer it just accepted: {reference}")
        return answer

    async def lookup(self, reference: str) -> Transfer | None:
        """The transfer with this reference, or None: no money moved for it."""
        with tracing.span("provider lookup", attributes={tracing.ATTR_PAYOUT_ID: reference}):
            return await self._call("GET", f"/v1/transfers/{reference}")

    async def _call(self, method: str, path: str, **kwargs: object) -> Transfer | None:
        try:
            async with self._client().request(method, self._base + path, **kwargs) as resp:  # type: ignore[arg-type]
                status = resp.status
                raw = await resp.read() if status < 500 else b""
                data = orjson.loads(raw) if raw.strip() else None
                replayed = resp.headers.get("Idempotent-Replayed") == "true"
        except aiohttp.ClientConnectorError as exc:
            raise ProviderUnreachable(f"provider unreachable: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:  # orjson's errors too
            raise ProviderInDoubt(f"no answer from the provider: {type(exc).__name__}") from exc
        if status == 404 and method == "GET":
            return None
        if status in (200, 201) and isinstance(data, dict):
            return Transfer(str(data["status"]), data.get("failure_code"), replayed)
        if status >= 500 or status in (404, 409, 429):
            raise ProviderInDoubt(f"provider answered {status}")
        log.error("provider_rejected_request", status=status, detail=str(data)[:300])
        return Transfer(DECLINED, REJECTED)
