"""The simulated provider's HTTP API, shaped like a real payment provider's:

  POST /v1/transfers         Idempotency-Key: <key>   {"reference", "amount", "currency", "account"}
      201 the transfer (status executed, or declined with failure_code); 200 with
      Idempotent-Replayed: true for a key seen within the retention window (no money moves);
      422 for a retained key sent with a different body; 503 when it cannot take the call.
  GET  /v1/transfers/{reference}   200 the transfer, 404 when no transfer has this reference.

A key is honoured for PROVIDER_SIM_RETENTION_S; after that it is forgotten and the same
request executes again, as at a real provider. A request holding a key makes a concurrent one
with the same key wait until it is decided, then replays its result.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payout_core.db.engine import autocommit, create_engine
from payout_core.http_observability import trace_requests
from payout_core.logging import get_logger
from payout_core.ops_http import database_ok, healthz
from payout_core.settings import Settings
from payout_provider_sim.accounts import DECLINING, TRANSIENT_FAILURES, Behaviour, behaviour
from payout_provider_sim.executions import Execution, Executions
from payout_provider_sim.storage import ensure_schema, idempotency_keys, transfers

log = get_logger(__name__)

# Claims the key for this request, or reclaims it once retention has expired; no row back
# when a live record holds it. A concurrent claim of the same key waits for this transaction.
_CLAIM = sa.text("""
INSERT INTO idempotency_keys AS k (key, request_hash, created_at)
VALUES (:key, :request_hash, now())
ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, transfer_id = NULL,
    created_at = now()
WHERE k.created_at < now() - make_interval(secs => :retention_s)
RETURNING key
""")


@dataclass
class PausePoint:
    """Test-only: hold the answer of the next execution after it is committed, until released
    (the window between the provider's execution and the caller's own commit)."""

    armed: int = 0
    paused: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def after_execution(self) -> None:
        if self.armed <= 0:
            return
        self.armed -= 1
        self.paused += 1
        await self.release.wait()


@dataclass
class Provider:
    settings: Settings
    engine: AsyncEngine
    executions: Executions
    rng: random.Random = field(default_factory=random.Random)
    transient_calls: Counter[str] = field(default_factory=Counter)
    pause: PausePoint = field(default_factory=PausePoint)

    @property
    def slow_answer_s(self) -> float:
        configured = self.settings.provider_sim_slow_answer_ms / 1000
        return configured or self.settings.provider_timeout_s + 1.0

    def decide(self, account: str) -> tuple[str, str | None]:
        if account in DECLINING:
            return "declined", DECLINING[account]
        rate = self.settings.provider_failure_rate
        if rate and self.rng.random() < rate:
            return "declined", "provider_declined"
        return "executed", None


PROVIDER = web.AppKey("provider", Provider)


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"status": status, "detail": detail}, status=status)


def transfer_json(row: Any) -> dict[str, Any]:
    return {
        "id": f"tr_{row.id}",
        "reference": row.reference,
        "status": row.status,
        "failure_code": row.failure_code,
        "amount": str(row.amount),
        "currency": row.currency,
        "created_at": row.created_at.isoformat(),
    }


def _transfer_request(body: Any) -> tuple[str, Decimal, str, str]:
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    try:
        reference, currency, account = (str(body[k]) for k in ("reference", "currency", "account"))
        amount = Decimal(str(body["amount"]))
    except (KeyError, InvalidOperation) as exc:
        raise ValueError(f"reference, amount, currency and account are required: {exc}") from None
    if not amount.is_finite() or amount <= 0 or len(currency) != 3:
        raise ValueError("amount must be positive and currency a 3-letter code")
    return reference, amount, currency, account


async def create_transfer(request: web.Request) -> web.StreamResponse:
    provider = request.app[PROVIDER]
    key = request.headers.get("Idempotency-Key", "")
    raw = await request.read()
    try:
        if not key:
            raise ValueError("the Idempotency-Key header is required")
        reference, amount, currency, account = _transfer_request(orjson.loads(raw))
    except (ValueError, orjson.JSONDecodeError) as exc:
        return _problem(400, str(exc))
    kind = behaviour(account)
    if kind is Behaviour.TRANSIENT:
        provider.transient_calls[key] += 1
        if provider.transient_calls[key] <= TRANSIENT_FAILURES:
            return _problem(503, "temporarily unavailable; no transfer was made")
    delay = provider.settings.provider_delay_ms / 1000
    if delay:
        await asyncio.sleep(delay)
    request_hash = hashlib.sha256(raw).hexdigest()
    if kind is Behaviour.SLOW:
        response, claimed = await _execute_slowly(
            provider, key, request_hash, reference, amount, currency, account
        )
    else:
        status, failure_code = provider.decide(account)
        row = await provider.executions.execute(
            Execution(key, request_hash, reference, amount, currency, account, status, failure_code)
        )
        claimed = row is not None
        if row is not None:
            response = web.json_response(transfer_json(row), status=201)
        else:
            async with autocommit(provider.engine) as conn:
                response = await _replay(conn, key, request_hash)
    if claimed:
        log.info("transfer_executed", reference=reference, status=response.status)
        await provider.pause.after_execution()
    if kind is Behaviour.LOST_ANSWER and response.status < 300:
        _drop_connection(request)
    return response


async def _execute_slowly(
    provider: Provider,
    key: str,
    request_hash: str,
    reference: str,
    amount: Decimal,
    currency: str,
    account: str,
) -> tuple[web.Response, bool]:
    """The slow account: claims its key, answers late, then executes, all in one transaction
    (a concurrent request with the key waits meanwhile). The response, and whether it executed."""
    async with provider.engine.begin() as conn:
        claim = (
            await conn.execute(
                _CLAIM,
                {
                    "key": key,
                    "request_hash": request_hash,
                    "retention_s": provider.settings.provider_sim_retention_s,
                },
            )
        ).first()
        if claim is None:
            return await _replay(conn, key, request_hash), False
        await asyncio.sleep(provider.slow_answer_s)
        return await _execute(conn, provider, key, reference, amount, currency, account), True


async def _execute(
    conn: AsyncConnection,
    provider: Provider,
    key: str,
    reference: str,
    amount: Decimal,
    currency: str,
    account: str,
) -> web.Response:
    status, failure_code = provider.decide(account)
    row = (
        await conn.execute(
            transfers.insert()
            .values(
                reference=reference,
                status=status,
                failure_code=failure_code,
                amount=amount,
                currency=currency,
                account_last4=account[-4:],
            )
            .returning(*transfers.c)
        )
    ).one()
    await conn.execute(
        idempotency_keys.update().where(idempotency_keys.c.key == key).values(transfer_id=row.id)
    )
    return web.json_response(transfer_json(row), status=201)


async def _replay(conn: AsyncConnection, key: str, request_hash: str) -> web.Response:
    row = (
        await conn.execute(
            sa.select(idempotency_keys.c.request_hash, *transfers.c)
            .select_from(idempotency_keys.join(transfers))
            .where(idempotency_keys.c.key == key)
        )
    ).first()
    if row is None:  # claimed by a request that was rolled back meanwhile: try again
        return _problem(409, "a request with this Idempotency-Key is in progress")
    if row.request_hash != request_hash:
        return _problem(422, "this Idempotency-Key was used with a different request")
    return web.json_response(
        transfer_json(row), status=200, headers={"Idempotent-Replayed": "true"}
    )


def _drop_connection(request: web.Request) -> None:
    """The money moved; the answer never arrives (a reset connection)."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError


async def get_transfer(request: web.Request) -> web.Response:
    """The transfer with this reference: an executed one if any, else the latest decline."""
    provider = request.app[PROVIDER]
    reference = request.match_info["reference"]
    async with provider.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(transfers)
                .where(transfers.c.reference == reference)
                .order_by((transfers.c.status == "executed").desc(), transfers.c.id.desc())
                .limit(1)
            )
        ).first()
    if row is None:
        return _problem(404, f"no transfer with reference {reference}")
    return web.json_response(transfer_json(row))


async def readyz(request: web.Request) -> web.Response:
    ok = await database_ok(request.app[PROVIDER].engine)
    return web.json_response({"status": "ok" if ok else "unavailable"}, status=200 if ok else 503)


async def arm_pause(request: web.Request) -> web.Response:
    pause = request.app[PROVIDER].pause
    pause.armed += 1
    pause.release.clear()
    return web.json_response({"armed": pause.armed, "paused": pause.paused})


async def pause_state(request: web.Request) -> web.Response:
    pause = request.app[PROVIDER].pause
    return web.json_response({"armed": pause.armed, "paused": pause.paused})


async def release_pause(request: web.Request) -> web.Response:
    pause = request.app[PROVIDER].pause
    pause.release.set()
    return web.json_response({"armed": pause.armed, "paused": pause.paused})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[trace_requests])

    async def provider_ctx(app: web.Application) -> AsyncIterator[None]:
        url = settings.provider_sim_database_url
        engine = create_engine(url, pool_size=settings.db_pool_size)
        await ensure_schema(url, engine)
        executions = Executions(engine, settings.provider_sim_retention_s)
        app[PROVIDER] = Provider(settings, engine, executions)
        yield
        app[PROVIDER].pause.release.set()
        await engine.dispose()

    app.cleanup_ctx.append(provider_ctx)
    app.router.add_post("/v1/transfers", create_transfer)
    app.router.add_get("/v1/transfers/{reference}", get_transfer)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if settings.provider_sim_test_controls:
        app.router.add_post("/test/pause", arm_pause)
        app.router.add_get("/test/pause", pause_state)
        app.router.add_post("/test/release", release_pause)
    return app
