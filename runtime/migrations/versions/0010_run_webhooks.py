"""run webhooks: a flag on the runs a webhook wants, and their deliveries

``runs.notify_pending`` is set by the statement that ends a run when a configured run
webhook wants its final status; the timer loop turns each flagged run into one
``run_webhook_deliveries`` row per matching endpoint and clears the flag
(runtime/run_webhooks.py).

Revision ID: runtime_0009
Revises: runtime_0008
Create Date: 2026-11-27 21:10:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import UTCDateTime

revision = 'runtime_0009'
down_revision = 'runtime_0008'
branch_labels = None
depends_on = None

_PENDING = sa.text("notify_pending")
_DUE = sa.text("status = 'pending'")


def upgrade() -> None:
    op.add_column('runs', sa.Column('notify_pending', sa.Boolean(), nullable=False,
                                    server_default=sa.text('false')))
    op.create_index('ix_runs_notify_pending', 'runs', ['id'],
                    postgresql_where=_PENDING, sqlite_where=_PENDING)
    op.create_table(
        'run_webhook_deliveries',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  primary_key=True, autoincrement=True),
        sa.Column('endpoint', sa.String(64), nullable=False),
        sa.Column('run_id', sa.String(40), sa.ForeignKey('runs.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('run_status', sa.String(32), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'),
        sa.Column('next_attempt_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.String(500)),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', UTCDateTime(timezone=True)),
    )
    op.create_index('ix_run_webhook_deliveries_run', 'run_webhook_deliveries',
                    ['run_id', 'endpoint'], unique=True)
    op.create_index('ix_run_webhook_deliveries_due', 'run_webhook_deliveries',
                    ['next_attempt_at'], postgresql_where=_DUE, sqlite_where=_DUE)


def downgrade() -> None:
    op.drop_index('ix_run_webhook_deliveries_due', table_name='run_webhook_deliveries')
    op.drop_index('ix_run_webhook_deliveries_run', table_name='run_webhook_deliveries')
    op.drop_table('run_webhook_deliveries')
    op.drop_index('ix_runs_notify_pending', table_name='runs')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('notify_pending')
