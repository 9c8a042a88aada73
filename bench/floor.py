"""The floor of `make bench`: the least a Python service on this stack (aiohttp, uvloop,
asyncpg) can do per request, measured beside payout-api in the same run.

Its handlers parse the JSON, check a few fields and run the API's exact statements (creation
without an Idempotency-Key, one payout by id), compiled from the API's own repository by
SQLAlchemy's asyncpg dialect so that they cannot drift, then answer. No validation of every
rule, no keys, metrics, logs or relay: what payout-api costs beyond this floor is the price of
everything it does, and the part of it that is not needed is ours to cut. Never shipped.

    python -m bench.floor --port 8090 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
import uvloop
from aiohttp import web
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect

from payout_api.adapters import payout_repository as repo
from payout_core.clients import BOOTSTRAP_CLIENT
from payout_core.db.tables import payouts
from payout_core.domain.currencies import MINOR_UNITS
from payout_core.messaging.contracts import HEADER_REQUEST_ID, ROUTING_KEY_CREATED, PayoutCreated

POOL = web.AppKey("pool", asyncpg.Pool)
CLIENT_ID = web.AppKey("client_id", uuid.UUID)


def compiled(statement: sa.ClauseElement) -> tuple[str, Sequence[str]]:
    """A statement as asyncpg runs it: $n placeholders and the names in their order."""
    result = statement.compile(dialect=asyncpg_dialect.dialect())
    return result.string, tuple(result.positiontup or ())


CREATE_SQL, CREATE_PARAMS = compiled(repo.INSERT_CREATED)
# GET one payout: the repository's own select and visibility rule (one client, not deleted).
GET_SQL, GET_PARAMS = compiled(
    sa.select(payouts).where(
        repo._visible(sa.bindparam("client_id", type_=sa.Uuid), sa.bindparam("id", type_=sa.Uuid))
    )
)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def create(request: web.Request) -> web.Response:
    try:
        body = orjson.loads(await request.read())
        details = body["recipient_details"]
        amount = Decimal(body["amount"])
        if body["currency"] not in MINOR_UNITS or not isinstance(details["account"], str):
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, InvalidOperation):
        return _json({"detail": "invalid"}, status=422)
    payout_id, request_id = uuid.uuid4(), uuid.uuid4().hex
    values = {
        "id": payout_id,
        "client_id": request.app[CLIENT_ID],
        "amount": amount,
        "currency": body["currency"],
        "recipient_details": details,
        "description": body.get("description", ""),
        "metadata": body.get("metadata", {}),
        "idempotency_key": None,
        "request_id": request_id,
        "routing_key": ROUTING_KEY_CREATED,
        # The API's payload, with the creation time as the API process knows it.
        "payload": PayoutCreated(payout_id=payout_id, created_at=datetime.now()).to_payload(),
        "headers": {HEADER_REQUEST_ID: request_id},
        # No trace context for the webhook trigger: tracing is off, as in the API's phase.
        "trace_context": None,
    }
    row = await request.app[POOL].fetchrow(CREATE_SQL, *(values[n] for n in CREATE_PARAMS))
    assert row is not None
    answer = {**body, "id": str(payout_id), "status": "pending", "created_at": row["at"]}
    return _json(answer, status=201)


async def get_one(request: web.Request) -> web.Response:
    try:
        payout_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        return _json({"detail": "not found"}, status=404)
    values = {"id": payout_id, "client_id": request.app[CLIENT_ID]}
    row = await request.app[POOL].fetchrow(GET_SQL, *(values[n] for n in GET_PARAMS))
    if row is None:
        return _json({"detail": "not found"}, status=404)
    return _json({k: str(v) if isinstance(v, Decimal | uuid.UUID) else v for k, v in row.items()})


async def _init(conn: asyncpg.Connection) -> None:
    for codec in ("json", "jsonb"):
        await conn.set_type_codec(
            codec,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


def create_app(database_url: str, pool_size: int) -> web.Application:
    async def database(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            database_url, min_size=pool_size, max_size=pool_size, init=_init
        )
        app[POOL] = pool
        client_id = await pool.fetchval("SELECT id FROM clients WHERE name = $1", BOOTSTRAP_CLIENT)
        assert client_id is not None, "start payout-api once first: it creates the client"
        app[CLIENT_ID] = client_id
        yield
        await pool.close()

    app = web.Application()
    app.cleanup_ctx.append(database)
    app.router.add_post("/api/payouts/", create)
    for path in ("/api/payouts/{id}/", "/api/payouts/{id}"):  # both, as the API serves
        app.router.add_get(path, get_one)
    app.router.add_get("/healthz", lambda _: _json({"status": "ok"}))
    app.router.add_get("/readyz", lambda _: _json({"status": "ok"}))
    return app


async def serve(database_url: str, port: int, pool_size: int) -> None:
    runner = web.AppRunner(create_app(database_url, pool_size), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pool-size", type=int, default=20, help="as DB_POOL_SIZE's default")
    args = parser.parse_args(argv)
    uvloop.run(serve(args.database_url, args.port, args.pool_size))


if __name__ == "__main__":
    main()
