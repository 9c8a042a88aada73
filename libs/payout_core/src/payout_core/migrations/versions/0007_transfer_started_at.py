"""payouts.transfer_started_at: when the latest provider transfer call for a payout began (the
database's clock), written and committed before the call is sent

A give-up that finds no transfer at the provider fails the payout only if no call began after
it read this value and every call begun before had ended by then (payout_core.db.transfer_fence).
Rows of earlier releases have none: their calls ended long ago.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "payouts", sa.Column("transfer_started_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("payouts", "transfer_started_at")
