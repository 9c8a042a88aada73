"""Migrations on a real PostgreSQL: keys made before 0002 keep working after it, 0006 goes
both ways (that the migrated schema is the one db/tables.py describes:
test_tables_match_migrations.py)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from payout_core.clients import authenticate, list_keys
from payout_core.db.engine import create_engine
from payout_core.db.migrate import alembic_config, upgrade
from tests.support import infra


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = infra.unique_name("payouts_migrate")
    url = infra.create_database(name)
    yield url
    infra.drop_database(name)


def test_a_key_created_before_0002_keeps_working_after_it(empty_database):
    upgrade(empty_database, "0001")
    key = "sk_created_under_0001_" + uuid.uuid4().hex
    client_id = uuid.uuid4()

    async def before() -> None:  # what 0001's create_client wrote
        engine = create_engine(empty_database, pool_size=1)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "INSERT INTO clients (id, name, key_hash, key_last4) "
                        "VALUES (:id, 'legacy', :hash, :last4)"
                    ),
                    {
                        "id": client_id,
                        "hash": hashlib.sha256(key.encode()).hexdigest(),
                        "last4": key[-4:],
                    },
                )
        finally:
            await engine.dispose()

    asyncio.run(before())
    upgrade(empty_database, "head")

    async def after():
        engine = create_engine(empty_database, pool_size=1)
        try:
            async with engine.connect() as conn:
                verified = await authenticate(conn, key)
                keys = await list_keys(conn, "legacy")
                legacy_hash = await conn.scalar(sa.text("SELECT key_hash FROM clients"))
                return verified, keys, legacy_hash
        finally:
            await engine.dispose()

    verified, keys, legacy_hash = asyncio.run(after())
    assert verified is not None and verified.client_id == client_id
    assert verified.scope == "write" and verified.expires_in_s is None
    assert [(k.last4, k.scope, k.state) for k in keys] == [(key[-4:], "write", "active")]
    # Still there for API processes of the previous release during a rolling upgrade.
    assert legacy_hash == hashlib.sha256(key.encode()).hexdigest()


def test_0005_names_waiting_outbox_messages_as_the_relay_did_and_new_ones_uniquely(
    empty_database,
):
    upgrade(empty_database, "0004")
    payout_id = str(uuid.uuid4())

    async def run(statements: list[str]) -> list[sa.Row]:
        engine = create_engine(empty_database, pool_size=1)
        try:
            async with engine.begin() as conn:
                for statement in statements[:-1]:
                    await conn.execute(sa.text(statement))
                return list(await conn.execute(sa.text(statements[-1])))
        finally:
            await engine.dispose()

    [(webhook_row_id,)] = asyncio.run(
        run(
            [
                "INSERT INTO outbox (routing_key, payload) VALUES "
                f"""('payout.created', '{{"payout_id": "{payout_id}"}}')""",
                "INSERT INTO outbox (routing_key, payload) VALUES "
                """('webhook.event', '{"event_id": "e"}') RETURNING id""",
            ]
        )
    )
    upgrade(empty_database, "head")
    rows = asyncio.run(
        run(
            [
                """INSERT INTO outbox (routing_key, payload) VALUES ('webhook.event', '{}')""",
                "SELECT message_id FROM outbox ORDER BY id",
            ]
        )
    )
    waiting, webhook, new = (row.message_id for row in rows)
    assert (waiting, webhook) == (payout_id, str(webhook_row_id))
    assert str(uuid.UUID(new)) == new and new not in (waiting, webhook)


def test_0006_puts_the_trace_context_in_the_webhook_trigger_and_takes_it_out_again(
    empty_database,
):
    def trigger_function() -> str:
        async def read() -> str:
            engine = create_engine(empty_database, pool_size=1)
            try:
                async with engine.connect() as conn:
                    return str(
                        await conn.scalar(
                            sa.text("SELECT prosrc FROM pg_proc WHERE proname = :name"),
                            {"name": "record_webhook_event"},
                        )
                    )
            finally:
                await engine.dispose()

        return asyncio.run(read())

    upgrade(empty_database, "head")
    assert "payouts.trace_context" in trigger_function()
    command.downgrade(alembic_config(empty_database), "0005")
    assert "payouts.trace_context" not in trigger_function()
    assert "INSERT INTO outbox (routing_key, payload)" in trigger_function()
    upgrade(empty_database, "head")
    assert "payouts.trace_context" in trigger_function()
