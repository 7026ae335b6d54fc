"""runs: the queue a trigger named that nothing declared, while the run waits for it

A trigger's ``queue`` naming no task's queue, no worker's and no ``queue()`` used to publish
the run to a RabbitMQ queue nobody consumes. As in Trigger.dev v4, such a run now waits in
PENDING_VERSION with the name in ``pending_queue`` until something declares it
(runtime/pending_queues.py). The partial index keeps the timer's look for those runs to the
few that have one.

Revision ID: runtime_0011
Revises: runtime_0010
Create Date: 2026-12-06 08:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'runtime_0011'
down_revision = 'runtime_0010'
branch_labels = None
depends_on = None

_WHERE = sa.text("pending_queue IS NOT NULL AND status = 'PENDING_VERSION'")


def upgrade() -> None:
    op.add_column('runs', sa.Column('pending_queue', sa.String(128)))
    op.create_index('ix_runs_pending_queue', 'runs', ['pending_queue'],
                    postgresql_where=_WHERE, sqlite_where=_WHERE)


def downgrade() -> None:
    op.drop_index('ix_runs_pending_queue', table_name='runs')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('pending_queue')
