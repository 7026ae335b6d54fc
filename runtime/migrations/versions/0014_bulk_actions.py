"""bulk_actions: cancel or replay in the background, resumable where it stopped

``runs.bulk_cancel/bulk_replay`` act in the caller, at most 10,000 runs a call. A bulk
action (runtime/bulk_actions.py) is a row the workers work through a page at a time,
with its progress and an abort, as Trigger.dev's ``runs.bulk.*`` are.

Revision ID: runtime_0013
Revises: runtime_0012
Create Date: 2026-12-06 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import Json, UTCDateTime

revision = 'runtime_0013'
down_revision = 'runtime_0012'
branch_labels = None
depends_on = None

_PENDING = sa.text("status = 'PENDING'")


def upgrade() -> None:
    op.create_table(
        'bulk_actions',
        sa.Column('id', sa.String(48), primary_key=True),
        sa.Column('action', sa.String(16), nullable=False),
        sa.Column('name', sa.String(256)),
        sa.Column('filters', Json),
        sa.Column('run_ids', Json),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('cursor', sa.String(48)),
        sa.Column('position', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('success', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('failure', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('lease_until', UTCDateTime(timezone=True)),
        sa.Column('created_by', sa.String(256)),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('completed_at', UTCDateTime(timezone=True)),
    )
    op.create_index('ix_bulk_actions_pending', 'bulk_actions', ['created_at'],
                    postgresql_where=_PENDING, sqlite_where=_PENDING)


def downgrade() -> None:
    op.drop_index('ix_bulk_actions_pending', table_name='bulk_actions')
    op.drop_table('bulk_actions')
