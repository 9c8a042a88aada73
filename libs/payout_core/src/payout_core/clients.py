"""API clients (tenants) and their keys. Only a SHA-256 of each key is stored: keys are
high-entropy random strings, so a fast hash is enough and lookups stay one index probe.

A client has one or more keys (api_keys): `write` keys may do everything, `read` keys only
read. Rolling a key issues a new one and gives the old ones an expiry, so both work for an
overlap. Every expiry is compared with PostgreSQL's now(), never with the clock of the host asking.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db.tables import api_keys, clients

KEY_PREFIX = "sk_"
BOOTSTRAP_CLIENT = "default"
READ = "read"
WRITE = "write"
SCOPES = (WRITE, READ)


@dataclass(frozen=True)
class Client:
    id: uuid.UUID
    name: str
    active_keys: int
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True)
class VerifiedKey:
    """What a key that authenticated may do."""

    key_id: uuid.UUID
    client_id: uuid.UUID
    scope: str
    # Seconds the key had left when it was checked, by PostgreSQL's clock; None: no expiry.
    expires_in_s: float | None = None

    @property
    def may_write(self) -> bool:
        return self.scope == WRITE


@dataclass(frozen=True)
class KeyInfo:
    client: str
    id: uuid.UUID
    last4: str
    scope: str
    state: str  # active, expiring (works until expires_at), expired, revoked, client-disabled
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class RolledKey:
    key: str
    # (last 4 characters, when it stops working) of each key the roll gave an expiry.
    expiring: list[tuple[str, datetime]]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def mask(key_last4: str) -> str:
    return "…" + key_last4


class ClientExists(Exception):
    pass


class ClientNotFound(Exception):
    pass


class ClientDisabled(Exception):
    pass


class KeyNotFound(Exception):
    pass


class KeyOfAnotherClient(Exception):
    """The bootstrap key is already a key of another client."""


_UNEXPIRED = sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > sa.func.now())
_USABLE = sa.and_(api_keys.c.revoked_at.is_(None), _UNEXPIRED)


async def authenticate(conn: AsyncConnection, key: str) -> VerifiedKey | None:
    """The key's grant if it is known, not revoked, not expired and its client is enabled."""
    digest = hash_key(key)
    expires_in_s = sa.func.extract("epoch", api_keys.c.expires_at - sa.func.now())
    row = (
        await conn.execute(
            sa.select(
                api_keys.c.id,
                api_keys.c.client_id,
                api_keys.c.key_hash,
                api_keys.c.scope,
                expires_in_s.label("expires_in_s"),
            )
            .join(clients, clients.c.id == api_keys.c.client_id)
            .where(api_keys.c.key_hash == digest, _USABLE, clients.c.disabled_at.is_(None))
        )
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    left = None if row.expires_in_s is None else float(row.expires_in_s)
    return VerifiedKey(row.id, row.client_id, row.scope, left)


async def _insert_key(
    conn: AsyncConnection, client_id: uuid.UUID, scope: str, key: str | None = None
) -> str:
    key = key or new_key()
    await conn.execute(
        api_keys.insert().values(
            id=uuid.uuid4(),
            client_id=client_id,
            key_hash=hash_key(key),
            key_last4=key[-4:],
            scope=scope,
        )
    )
    return key


async def _insert_client(conn: AsyncConnection, name: str) -> uuid.UUID | None:
    """The new client's id; None when a client of that name exists."""
    return (
        await conn.execute(
            insert(clients)
            .values(id=uuid.uuid4(), name=name)
            .on_conflict_do_nothing(index_elements=[clients.c.name])
            .returning(clients.c.id)
        )
    ).scalar()


async def create_client(conn: AsyncConnection, name: str, key: str | None = None) -> str:
    """Create a client with a write key and return the key (shown once, never stored)."""
    client_id = await _insert_client(conn, name)
    if client_id is None:
        raise ClientExists(name)
    return await _insert_key(conn, client_id, WRITE, key)


async def _locked_client(conn: AsyncConnection, name: str) -> sa.Row[Any, Any]:
    """The client's id and disabled_at, its row locked until the transaction ends, so that
    changes to its keys happen one after the other."""
    row = (
        await conn.execute(
            sa.select(clients.c.id, clients.c.disabled_at)
            .where(clients.c.name == name)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise ClientNotFound(name)
    return row


async def _enabled_client_id(conn: AsyncConnection, name: str) -> uuid.UUID:
    row = await _locked_client(conn, name)
    if row.disabled_at is not None:
        raise ClientDisabled(name)
    return row.id


async def create_key(conn: AsyncConnection, name: str, scope: str) -> str:
    """Another key for an enabled client; returns it (shown once)."""
    return await _insert_key(conn, await _enabled_client_id(conn, name), scope)


async def roll_key(
    conn: AsyncConnection, name: str, expire_old_after: timedelta, scope: str = WRITE
) -> RolledKey:
    """A new key of `scope`; the client's other usable keys of that scope stop working
    `expire_old_after` from now (or earlier, if they already expire sooner)."""
    client_id = await _enabled_client_id(conn, name)
    expiring = await conn.execute(
        api_keys.update()
        .where(api_keys.c.client_id == client_id, api_keys.c.scope == scope, _USABLE)
        .values(
            # LEAST ignores NULL: a key without expiry gets now() + the overlap.
            expires_at=sa.func.least(
                api_keys.c.expires_at,
                sa.func.now() + sa.literal(expire_old_after, sa.Interval),
            )
        )
        .returning(api_keys.c.key_last4, api_keys.c.expires_at)
    )
    old = [(row.key_last4, row.expires_at) for row in expiring]
    return RolledKey(await _insert_key(conn, client_id, scope), old)


async def revoke_key(conn: AsyncConnection, name: str, key_id_prefix: str) -> str:
    """Revoke the client's key whose id starts with the prefix; returns its last 4 characters."""
    client_id = (await _locked_client(conn, name)).id
    rows = (
        await conn.execute(
            api_keys.update()
            .where(
                api_keys.c.client_id == client_id,
                sa.cast(api_keys.c.id, sa.Text).startswith(key_id_prefix.lower(), autoescape=True),
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=sa.func.now())
            .returning(api_keys.c.key_last4)
        )
    ).all()
    if len(rows) != 1:
        # None, or an ambiguous prefix: raising rolls the whole transaction back.
        raise KeyNotFound(key_id_prefix)
    return rows[0].key_last4


async def ensure_client(conn: AsyncConnection, name: str, key: str) -> dict[str, object]:
    """Make sure the client exists, is enabled and accepts this key as its write key
    (API_BOOTSTRAP_KEY). Its other write keys without expiry are revoked, so changing the
    variable replaces the key. Returns what had to change (empty when nothing did)."""
    changes: dict[str, object] = {}
    if await _insert_client(conn, name) is not None:
        changes["client_created"] = True
    client = await _locked_client(conn, name)
    if client.disabled_at is not None:
        await conn.execute(
            clients.update().where(clients.c.id == client.id).values(disabled_at=None)
        )
        changes["client_enabled"] = True
    digest = hash_key(key)
    row = (
        await conn.execute(
            sa.select(
                api_keys.c.id,
                api_keys.c.client_id,
                api_keys.c.scope,
                api_keys.c.expires_at,
                api_keys.c.revoked_at,
            ).where(api_keys.c.key_hash == digest)
        )
    ).first()
    if row is None:
        await _insert_key(conn, client.id, WRITE, key)
        changes["key_added"] = mask(key[-4:])
    elif row.client_id != client.id:
        raise KeyOfAnotherClient(name)
    elif row.scope != WRITE or row.expires_at is not None or row.revoked_at is not None:
        await conn.execute(
            api_keys.update()
            .where(api_keys.c.id == row.id)
            .values(scope=WRITE, expires_at=None, revoked_at=None)
        )
        changes["key_restored"] = mask(key[-4:])
    revoked = await conn.execute(
        api_keys.update()
        .where(
            api_keys.c.client_id == client.id,
            api_keys.c.key_hash != digest,
            api_keys.c.scope == WRITE,
            api_keys.c.expires_at.is_(None),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=sa.func.now())
        .returning(api_keys.c.key_last4)
    )
    if revoked_last4 := [mask(r.key_last4) for r in revoked]:
        changes["keys_revoked"] = revoked_last4
    return changes


async def list_clients(conn: AsyncConnection) -> list[Client]:
    active = (
        sa.select(sa.func.count())
        .where(api_keys.c.client_id == clients.c.id, _USABLE)
        .scalar_subquery()
    )
    rows = await conn.execute(
        sa.select(
            clients.c.id,
            clients.c.name,
            active.label("active_keys"),
            clients.c.created_at,
            clients.c.disabled_at,
        ).order_by(clients.c.name)
    )
    return [Client(**row._mapping) for row in rows]


async def list_keys(conn: AsyncConnection, name: str | None = None) -> list[KeyInfo]:
    state = sa.case(
        (api_keys.c.revoked_at.is_not(None), "revoked"),
        (clients.c.disabled_at.is_not(None), "client-disabled"),
        (api_keys.c.expires_at <= sa.func.now(), "expired"),
        (api_keys.c.expires_at.is_not(None), "expiring"),
        else_="active",
    )
    query = (
        sa.select(
            clients.c.name.label("client"),
            api_keys.c.id,
            api_keys.c.key_last4.label("last4"),
            api_keys.c.scope,
            state.label("state"),
            api_keys.c.created_at,
            api_keys.c.expires_at,
        )
        .join(clients, clients.c.id == api_keys.c.client_id)
        .order_by(clients.c.name, api_keys.c.created_at, api_keys.c.id)
    )
    if name is not None:
        if (await conn.scalar(sa.select(clients.c.id).where(clients.c.name == name))) is None:
            raise ClientNotFound(name)
        query = query.where(clients.c.name == name)
    return [KeyInfo(**row._mapping) for row in await conn.execute(query)]


async def disable_client(conn: AsyncConnection, name: str) -> None:
    result = await conn.execute(
        clients.update()
        .where(clients.c.name == name)
        .values(disabled_at=sa.func.coalesce(clients.c.disabled_at, sa.func.now()))
        .returning(clients.c.id)
    )
    if result.first() is None:
        raise ClientNotFound(name)
