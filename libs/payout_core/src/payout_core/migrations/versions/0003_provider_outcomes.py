"""provider outcomes: in-doubt and reconciliation bookkeeping on payouts, the provider's ledger
moved out to its own service, indexes for housekeeping

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payouts", sa.Column("in_doubt_since", sa.DateTime(timezone=True)))
    op.add_column(
        "payouts", sa.Column("reenqueue_count", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("payouts", sa.Column("flagged_at", sa.DateTime(timezone=True)))
    op.add_column("payouts", sa.Column("flag_reason", sa.Text()))
    op.create_index(
        "ix_outbox_published",
        "outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NOT NULL"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    # The simulated provider keeps its books in its own database now (payout-provider-sim).
    op.drop_table("provider_ledger")


def downgrade() -> None:
    op.create_table(
        "provider_ledger",
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=22, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("account_last4", sa.Text(), nullable=True),
        sa.Column(
            "first_call_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('succeeded','failed')", name=op.f("ck_provider_ledger_outcome")
        ),
        sa.PrimaryKeyConstraint("reference", name=op.f("pk_provider_ledger")),
    )
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("ix_outbox_published", table_name="outbox")
    for column in ("flag_reason", "flagged_at", "reenqueue_count", "in_doubt_since"):
        op.drop_column("payouts", column)
