"""api keys of their own (several per client, scopes, expiry) and the admin audit table

Every client's key moves to api_keys as a write key, unchanged: its hash is copied, so it keeps
working. clients.key_hash and key_last4 stay (now nullable, no longer read or written by this
release) so that API processes of the previous release, still running during a rolling upgrade,
keep authenticating; a later migration drops them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 15:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("client_id", sa.UUID(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("key_last4", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('read','write')", name=op.f("ck_api_keys_scope")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_api_keys_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_client_id", "api_keys", ["client_id"], unique=False)
    op.execute(
        "INSERT INTO api_keys (id, client_id, key_hash, key_last4, scope, created_at) "
        "SELECT gen_random_uuid(), id, key_hash, key_last4, 'write', created_at FROM clients "
        "WHERE key_hash IS NOT NULL"
    )
    op.alter_column("clients", "key_hash", existing_type=sa.Text(), nullable=True)
    op.alter_column("clients", "key_last4", existing_type=sa.Text(), nullable=True)
    op.create_table(
        "admin_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("client", sa.Text(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_audit")),
    )


def downgrade() -> None:
    op.drop_table("admin_audit")
    # Back to one key per client: its newest key that still works.
    op.execute(
        "UPDATE clients c SET key_hash = k.key_hash, key_last4 = k.key_last4 "
        "FROM (SELECT DISTINCT ON (client_id) client_id, key_hash, key_last4 FROM api_keys "
        "      WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()) "
        "      ORDER BY client_id, scope DESC, created_at DESC) k "
        "WHERE k.client_id = c.id"
    )
    op.alter_column("clients", "key_last4", existing_type=sa.Text(), nullable=False)
    op.alter_column("clients", "key_hash", existing_type=sa.Text(), nullable=False)
    op.drop_index("ix_api_keys_client_id", table_name="api_keys")
    op.drop_table("api_keys")
