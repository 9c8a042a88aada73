"""SQLAlchemy Core tables. Alembic migrations are the source of truth for the live schema;
these definitions mirror them (tests/integration/test_tables_match_migrations.py checks that
the two agree)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
TS = sa.DateTime(timezone=True)
NOW = sa.text("now()")
STATUSES = "'pending','processing','processed','failed','cancelled'"

clients = sa.Table(
    "clients",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    # Superseded by api_keys (migration 0002), no longer read or written: kept so that API
    # processes of the previous release keep authenticating during a rolling upgrade.
    sa.Column("key_hash", sa.Text, unique=True),
    sa.Column("key_last4", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
    sa.Column("disabled_at", TS),
)

# A client's API keys: several during a roll-over (the old one with expires_at), read-only ones.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("key_last4", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
    # Compared with PostgreSQL's now(), never with an API host's clock.
    sa.Column("expires_at", TS),
    sa.Column("revoked_at", TS),
    sa.CheckConstraint("scope IN ('read','write')", name="scope"),
)
sa.Index("ix_api_keys_client_id", api_keys.c.client_id)

# Operator actions (payout-admin, the bootstrap key): who, what, when, with details.
admin_audit = sa.Table(
    "admin_audit",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("at", TS, nullable=False, server_default=NOW),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("client", sa.Text),
    sa.Column("details", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
)

payouts = sa.Table(
    "payouts",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("amount", sa.Numeric(22, 4), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("recipient_details", JSONB, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("failure_code", sa.Text),
    sa.Column("failure_message", sa.Text),
    sa.Column("idempotency_key", sa.Text),
    sa.Column("request_id", sa.Text),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
    sa.Column("updated_at", TS, nullable=False, server_default=NOW),
    sa.Column("processed_at", TS),
    sa.Column("deleted_at", TS),
    # Last time the reconciler re-enqueued this payout (it waits a threshold between two).
    sa.Column("reenqueued_at", TS),
    # How often the reconciler re-enqueued it; past RECONCILE_MAX_REENQUEUES it is flagged.
    sa.Column("reenqueue_count", sa.Integer, nullable=False, server_default="0"),
    # Since when a provider call for it has had no definite answer (cleared by nothing: history).
    sa.Column("in_doubt_since", TS),
    # When the latest provider transfer call began: the give-up's fence (db/transfer_fence.py).
    sa.Column("transfer_started_at", TS),
    # Set when automation stopped trying and an operator must look (`payout-admin attention`).
    sa.Column("flagged_at", TS),
    sa.Column("flag_reason", sa.Text),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.CheckConstraint(f"status IN ({STATUSES})", name="status"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
)
# Keyset pagination per client, newest first.
sa.Index(
    "ix_payouts_client_created",
    payouts.c.client_id,
    payouts.c.created_at.desc(),
    payouts.c.id.desc(),
)
sa.Index(
    "ix_payouts_client_idempotency_key",
    payouts.c.client_id,
    payouts.c.idempotency_key,
    postgresql_where=payouts.c.idempotency_key.isnot(None),
)
# The reconciler looks for payouts that sit in a non-terminal status.
sa.Index(
    "ix_payouts_unfinished",
    payouts.c.updated_at,
    postgresql_where=sa.text("status IN ('pending','processing') AND deleted_at IS NULL"),
)

payout_events = sa.Table(
    "payout_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("payout_id", UUID(as_uuid=True), sa.ForeignKey("payouts.id"), nullable=False),
    sa.Column("from_status", sa.Text),
    sa.Column("to_status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text),
    sa.Column("at", TS, nullable=False, server_default=NOW),
)
sa.Index("ix_payout_events_payout", payout_events.c.payout_id, payout_events.c.id)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    # The AMQP message_id it is published with; a new payout's message is named after it.
    sa.Column(
        "message_id", sa.Text, nullable=False, server_default=sa.text("(gen_random_uuid())::text")
    ),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
    sa.Column("published_at", TS),
)
sa.Index("ix_outbox_unpublished", outbox.c.id, postgresql_where=outbox.c.published_at.is_(None))
# Housekeeping deletes published rows oldest first.
sa.Index("ix_outbox_published", outbox.c.id, postgresql_where=outbox.c.published_at.isnot(None))

# How long an Idempotency-Key's record is honoured (the API) and kept (housekeeping).
IDEMPOTENCY_KEY_TTL = "24 hours"

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("payout_id", UUID(as_uuid=True), sa.ForeignKey("payouts.id"), nullable=False),
    sa.Column("response_status", sa.Integer, nullable=False),
    sa.Column("response_body", JSONB, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
)
# Housekeeping deletes expired records oldest first.
sa.Index("ix_idempotency_keys_created_at", idempotency_keys.c.created_at)

# Webhooks (docs/webhooks.md). An endpoint belongs to one client; its secrets are stored
# encrypted (payout_core.webhooks.secrets), the previous one signs too until it expires.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("client_id", UUID(as_uuid=True), sa.ForeignKey("clients.id"), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("enabled_events", sa.ARRAY(sa.Text), nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="enabled"),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_expires_at", TS),
    # Since when every attempt has failed (cleared by a success): disables it after a while.
    sa.Column("failing_since", TS),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
    sa.Column("updated_at", TS, nullable=False, server_default=NOW),
    sa.CheckConstraint("status IN ('enabled','disabled')", name="status"),
)
sa.Index(
    "ix_webhook_endpoints_client_created",
    webhook_endpoints.c.client_id,
    webhook_endpoints.c.created_at.desc(),
    webhook_endpoints.c.id.desc(),
)

# One row per payout status change, inserted by a trigger on payouts (migration 0004) in the
# transaction of the change. `payout` is the row as it was then; the API renders it.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("client_id", UUID(as_uuid=True), nullable=False),
    sa.Column("payout_id", UUID(as_uuid=True), nullable=False),
    sa.Column("payout", JSONB, nullable=False),
    sa.Column("created_at", TS, nullable=False, server_default=NOW),
)
sa.Index(
    "ix_webhook_events_client_created",
    webhook_events.c.client_id,
    webhook_events.c.created_at.desc(),
    webhook_events.c.id.desc(),
)
sa.Index("ix_webhook_events_payout", webhook_events.c.payout_id)
sa.Index("ix_webhook_events_created_at", webhook_events.c.created_at)

# Every delivery attempt: what the endpoint answered (kept as long as events are).
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "endpoint_id",
        UUID(as_uuid=True),
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", TS, nullable=False, server_default=NOW),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("response_status", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("succeeded", sa.Boolean, nullable=False),
)
sa.Index("ix_webhook_attempts_endpoint", webhook_attempts.c.endpoint_id, webhook_attempts.c.id)
sa.Index("ix_webhook_attempts_at", webhook_attempts.c.at)
