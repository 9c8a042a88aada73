"""Payouts that automation stopped deciding and an operator must look at: flagged ones (the
reconciler's re-enqueues used up, a give-up with the money in doubt) and ones in doubt (a
provider call without a definite answer, still unresolved). Neither is ever failed for it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from payout_core.db.tables import payouts

UNFINISHED = ("pending", "processing")
# Why a payout was flagged.
REENQUEUES_USED_UP = "reenqueues_used_up"
GIVEN_UP_IN_DOUBT = "given_up_in_doubt"


async def flag(conn: AsyncConnection, payout_ids: Sequence[uuid.UUID], reason: str) -> None:
    """Mark unfinished payouts for operators (the first flag's time stays)."""
    if not payout_ids:
        return
    await conn.execute(
        payouts.update()
        .where(payouts.c.id.in_(payout_ids), payouts.c.status.in_(UNFINISHED))
        .values(
            flagged_at=sa.func.coalesce(payouts.c.flagged_at, sa.func.now()), flag_reason=reason
        )
    )


class NotFlagged(Exception):
    """No unfinished flagged payout has this id."""


async def unflag(conn: AsyncConnection, payout_id: uuid.UUID) -> str:
    """Hand a flagged payout back to the reconciler with its re-enqueues renewed: its next pass
    looks it up at the provider (a processing payout) or re-enqueues it. Its flag reason."""
    reason = await conn.scalar(
        sa.select(payouts.c.flag_reason)
        .where(
            payouts.c.id == payout_id,
            payouts.c.status.in_(UNFINISHED),
            payouts.c.flagged_at.isnot(None),
        )
        .with_for_update()
    )
    if reason is None:
        raise NotFlagged(str(payout_id))
    await conn.execute(
        payouts.update()
        .where(payouts.c.id == payout_id)
        .values(flagged_at=None, flag_reason=None, reenqueue_count=0, reenqueued_at=None)
    )
    return str(reason)


async def mark_in_doubt(conn: AsyncConnection, payout_id: uuid.UUID) -> None:
    await conn.execute(
        payouts.update()
        .where(payouts.c.id == payout_id, payouts.c.status == "processing")
        .values(in_doubt_since=sa.func.coalesce(payouts.c.in_doubt_since, sa.func.now()))
    )


def _needs_attention() -> sa.ColumnElement[bool]:
    return sa.and_(
        payouts.c.status.in_(UNFINISHED),
        payouts.c.deleted_at.is_(None),
        sa.or_(payouts.c.flagged_at.isnot(None), payouts.c.in_doubt_since.isnot(None)),
    )


async def list_needing_attention(
    conn: AsyncConnection, limit: int = 1000
) -> Sequence[Row[*tuple[Any, ...]]]:
    return (
        await conn.execute(
            sa.select(
                payouts.c.id,
                payouts.c.status,
                payouts.c.amount,
                payouts.c.currency,
                payouts.c.created_at,
                payouts.c.in_doubt_since,
                payouts.c.flagged_at,
                payouts.c.flag_reason,
                payouts.c.reenqueue_count,
            )
            .where(_needs_attention())
            .order_by(payouts.c.created_at)
            .limit(limit)
        )
    ).all()


async def counts(conn: AsyncConnection, stuck_after_s: float) -> dict[str, int]:
    """Gauges: unfinished payouts without progress for stuck_after_s, in doubt, flagged."""
    age = sa.func.now() - sa.func.make_interval(0, 0, 0, 0, 0, 0, stuck_after_s)
    unfinished = sa.and_(payouts.c.status.in_(UNFINISHED), payouts.c.deleted_at.is_(None))
    row = (
        await conn.execute(
            sa.select(
                sa.func.count().filter(payouts.c.updated_at < age).label("stuck"),
                sa.func.count().filter(payouts.c.in_doubt_since.isnot(None)).label("in_doubt"),
                sa.func.count().filter(payouts.c.flagged_at.isnot(None)).label("flagged"),
            ).where(unfinished)
        )
    ).one()
    return {"stuck": row.stuck, "in_doubt": row.in_doubt, "flagged": row.flagged}
