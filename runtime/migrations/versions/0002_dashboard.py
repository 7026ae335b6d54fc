"""dashboard: API keys, two-phase batches, request idempotency

Revision ID: dash0001
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import runtime.store.tables

revision = "dash0001"
down_revision = "0001"
branch_labels = ("dashboard",)
depends_on = None

_Json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_Dt = runtime.store.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", _Dt, nullable=False),
        sa.Column("revoked_at", _Dt, nullable=True),
        sa.Column("last_used_at", _Dt, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "api_batches",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("task_identifiers", _Json, nullable=True),
        sa.Column("request_key", sa.String(length=128), nullable=True),
        sa.Column("idempotency_key", sa.String(length=2048), nullable=True),
        sa.Column("idempotency_key_user", sa.String(length=2048), nullable=True),
        sa.Column("sealed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", _Dt, nullable=False),
        sa.Column("updated_at", _Dt, nullable=False),
        sa.Column("sealed_at", _Dt, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_table(
        "api_batch_items",
        sa.Column("batch_id", sa.String(length=48), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", _Dt, nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "item_index"),
    )
    op.create_table(
        "api_requests",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("request_key", sa.String(length=128), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", _Json, nullable=True),
        sa.Column("created_at", _Dt, nullable=False),
        sa.PrimaryKeyConstraint("scope", "request_key"),
    )
    op.create_index("ix_api_requests_created", "api_requests", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_requests_created", table_name="api_requests")
    op.drop_table("api_requests")
    op.drop_table("api_batch_items")
    op.drop_table("api_batches")
    op.drop_table("api_keys")
