"""API clients (tenants) and their keys. Only a SHA-256 of each key is stored: keys are
high-entropy random strings, so a fast hash is enough and lookups stay one index probe."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db.tables import clients

KEY_PREFIX = "sk_"
BOOTSTRAP_CLIENT = "default"


@dataclass(frozen=True)
class Client:
    id: uuid.UUID
    name: str
    key_last4: str
    created_at: datetime
    disabled_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class ClientExists(Exception):
    pass


class ClientNotFound(Exception):
    pass


async def authenticate(conn: AsyncConnection, key: str) -> uuid.UUID | None:
    """The id of the enabled client owning this key, else None."""
    digest = hash_key(key)
    row = (
        await conn.execute(
            sa.select(clients.c.id, clients.c.key_hash).where(
                clients.c.key_hash == digest, clients.c.disabled_at.is_(None)
            )
        )
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return row.id


async def create_client(conn: AsyncConnection, name: str, key: str | None = None) -> str:
    """Create a client and return its key (shown once, never stored)."""
    key = key or new_key()
    result = await conn.execute(
        insert(clients)
        .values(id=uuid.uuid4(), name=name, key_hash=hash_key(key), key_last4=key[-4:])
        .on_conflict_do_nothing(index_elements=[clients.c.name])
        .returning(clients.c.id)
    )
    if result.first() is None:
        raise ClientExists(name)
    return key


async def ensure_client(conn: AsyncConnection, name: str, key: str) -> None:
    """Make sure the client exists, is enabled and accepts this key (API_BOOTSTRAP_KEY)."""
    await conn.execute(
        insert(clients)
        .values(id=uuid.uuid4(), name=name, key_hash=hash_key(key), key_last4=key[-4:])
        .on_conflict_do_update(
            index_elements=[clients.c.name],
            set_={"key_hash": hash_key(key), "key_last4": key[-4:], "disabled_at": None},
        )
    )


async def list_clients(conn: AsyncConnection) -> list[Client]:
    rows = await conn.execute(
        sa.select(
            clients.c.id,
            clients.c.name,
            clients.c.key_last4,
            clients.c.created_at,
            clients.c.disabled_at,
        ).order_by(clients.c.name)
    )
    return [Client(**row._mapping) for row in rows]


async def disable_client(conn: AsyncConnection, name: str) -> None:
    result = await conn.execute(
        clients.update()
        .where(clients.c.name == name)
        .values(disabled_at=sa.func.coalesce(clients.c.disabled_at, sa.func.now()))
        .returning(clients.c.id)
    )
    if result.first() is None:
        raise ClientNotFound(name)
