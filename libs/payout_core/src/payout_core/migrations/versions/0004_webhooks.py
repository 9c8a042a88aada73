"""webhooks: endpoints, events written by a trigger in the transaction of each status change,
delivery attempts

The trigger is the one place an event is written: every statement that inserts a payout or
changes its status (the API's, the processor's batched ones, the reconciler's, payout-admin's)
gets its event in the same transaction, and none can forget it. It also queues a fan-out
message in the outbox when the client has an enabled endpoint (the relay publishes it).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
NOW = sa.text("now()")

RECORD_EVENT = """
CREATE FUNCTION record_webhook_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id uuid := gen_random_uuid();
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    -- amount as text: a JSON number would reach Python as a float.
    INSERT INTO webhook_events (id, type, client_id, payout_id, payout, created_at)
    VALUES (event_id,
        CASE WHEN TG_OP = 'INSERT' THEN 'payout.created' ELSE 'payout.' || NEW.status END,
        NEW.client_id, NEW.id,
        to_jsonb(NEW) || jsonb_build_object('amount', NEW.amount::text), now());
    IF EXISTS (SELECT 1 FROM webhook_endpoints
               WHERE client_id = NEW.client_id AND status = 'enabled') THEN
        INSERT INTO outbox (routing_key, payload)
        VALUES ('webhook.event', jsonb_build_object('event_id', event_id));
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("client_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("enabled_events", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("status", sa.Text(), server_default="enabled", nullable=False),
        sa.Column("disabled_reason", sa.Text()),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text()),
        sa.Column("previous_secret_expires_at", TS),
        sa.Column("failing_since", TS),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("updated_at", TS, server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "status IN ('enabled','disabled')", name=op.f("ck_webhook_endpoints_status")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_webhook_endpoints_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        "ix_webhook_endpoints_client_created",
        "webhook_endpoints",
        ["client_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("client_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("payout_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("payout", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
    )
    op.create_index(
        "ix_webhook_events_client_created",
        "webhook_events",
        ["client_id", sa.text("created_at DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_webhook_events_payout", "webhook_events", ["payout_id"])
    op.create_index("ix_webhook_events_created_at", "webhook_events", ["created_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("endpoint_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", TS, server_default=NOW, nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_attempts_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_endpoint", "webhook_attempts", ["endpoint_id", "id"])
    op.create_index("ix_webhook_attempts_at", "webhook_attempts", ["at"])
    op.execute(RECORD_EVENT)
    op.execute(
        "CREATE TRIGGER payouts_webhook_event AFTER INSERT OR UPDATE OF status ON payouts "
        "FOR EACH ROW EXECUTE FUNCTION record_webhook_event()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER payouts_webhook_event ON payouts")
    op.execute("DROP FUNCTION record_webhook_event()")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
