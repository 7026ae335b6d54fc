"""queue controls: pause a task's queue, override its concurrency limit

A row exists while ops hold a task's queue: paused (no new run of the task starts) or with
its concurrency limit overridden. The claim checks for one; see runtime/store/slots.py.

Revision ID: runtime_0004
Revises: runtime_0003
Create Date: 2026-11-27 11:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import UTCDateTime

revision = 'runtime_0004'
down_revision = 'runtime_0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'queue_controls',
        sa.Column('task_identifier', sa.String(128), primary_key=True),
        sa.Column('paused', sa.Boolean(), nullable=False, server_default=sa.text('false')),
        sa.Column('paused_at', UTCDateTime(timezone=True)),
        sa.Column('paused_by', sa.String(128)),
        sa.Column('concurrency_limit', sa.Integer()),
        sa.Column('total_concurrency_limit', sa.Integer()),
        sa.Column('overridden_at', UTCDateTime(timezone=True)),
        sa.Column('overridden_by', sa.String(128)),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('queue_controls')
