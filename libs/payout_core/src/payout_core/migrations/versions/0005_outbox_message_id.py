"""outbox: each message has its own id, the AMQP message_id the relay publishes it with

Rows already waiting keep the id the relay gave them before (the payout's id from the
payload, else the row's id). A row inserted without one (the webhook trigger's, an API
process of the previous release during a rolling upgrade) gets a random one.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("message_id", sa.Text(), nullable=True))
    op.execute("UPDATE outbox SET message_id = coalesce(payload->>'payout_id', id::text)")
    op.alter_column(
        "outbox",
        "message_id",
        nullable=False,
        server_default=sa.text("(gen_random_uuid())::text"),
    )


def downgrade() -> None:
    op.drop_column("outbox", "message_id")
