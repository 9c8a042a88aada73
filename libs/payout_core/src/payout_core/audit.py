"""The audit trail of operator actions: who did what to which client, when (PostgreSQL's
clock), with details as JSON. Written in the same transaction as the action it records, so
an action that rolls back leaves no row and a recorded action did happen. Never holds a key,
only its last 4 characters."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db.tables import admin_audit

# The actor of changes the API makes at start for API_BOOTSTRAP_KEY.
BOOTSTRAP_ACTOR = "api:API_BOOTSTRAP_KEY"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    client: str | None
    details: dict[str, Any]


def os_user() -> str:
    """The operator's login name; in a container without a passwd entry, its uid."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid:{os.getuid()}"


async def record(
    conn: AsyncConnection,
    actor: str,
    action: str,
    client: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        admin_audit.insert().values(
            actor=actor, action=action, client=client, details=details or {}
        )
    )


async def entries(
    conn: AsyncConnection, *, client: str | None = None, limit: int = 50
) -> list[AuditEntry]:
    """The latest `limit` entries (for one client, if given), oldest first."""
    query = sa.select(admin_audit).order_by(admin_audit.c.id.desc()).limit(limit)
    if client is not None:
        query = query.where(admin_audit.c.client == client)
    rows = [AuditEntry(**row._mapping) for row in await conn.execute(query)]
    return rows[::-1]
