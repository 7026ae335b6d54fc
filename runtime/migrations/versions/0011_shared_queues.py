"""runs and task definitions: the concurrency queue, so tasks can share one (``queue()``)

A run's slots were counted per task; a shared queue (runtime/shared_queues.py) counts them
over every task in it. ``runs.concurrency_queue`` names the queue a run's slots belong to
(its task's id, or the shared queue's name) and the three slot indexes group by it instead
of the task. Runs not yet final take their task's id; final runs never count, so they are
left NULL rather than rewriting the whole table. ``queue_definitions`` holds the shared
queues workers declare, so producers without their code can trigger into one by name.

Revision ID: runtime_0010
Revises: runtime_0009
Create Date: 2026-12-06 05:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import UTCDateTime

revision = 'runtime_0010'
down_revision = 'runtime_0009'
branch_labels = None
depends_on = None

_SLOTS = sa.text("concurrency_limit IS NOT NULL AND status IN ('EXECUTING', 'QUEUED')")
_BUSY = sa.text("concurrency_limit IS NOT NULL AND (status = 'EXECUTING' "
                "OR (status = 'QUEUED' AND NOT waiting_for_slot))")
_WAITING = sa.text("waiting_for_slot AND status = 'QUEUED'")
_FINAL = "('COMPLETED', 'FAILED', 'CANCELED', 'CRASHED', 'SYSTEM_FAILURE', 'TIMED_OUT', 'EXPIRED')"


def _indexes(column: str) -> None:
    op.create_index('ix_runs_slots', 'runs',
                    [column, 'concurrency_key', 'status', 'waiting_for_slot'],
                    postgresql_where=_SLOTS, sqlite_where=_SLOTS)
    op.create_index('ix_runs_busy_slots', 'runs', [column, 'status', 'concurrency_key'],
                    postgresql_where=_BUSY, sqlite_where=_BUSY)
    op.create_index('ix_runs_slot_waiting', 'runs', [column, 'concurrency_key', 'id'],
                    postgresql_where=_WAITING, sqlite_where=_WAITING)


def _drop_indexes() -> None:
    for name in ('ix_runs_slots', 'ix_runs_busy_slots', 'ix_runs_slot_waiting'):
        op.drop_index(name, table_name='runs')


def upgrade() -> None:
    op.add_column('runs', sa.Column('concurrency_queue', sa.String(128)))
    op.add_column('task_definitions', sa.Column('concurrency_queue', sa.String(128)))
    op.create_table(
        'queue_definitions',
        sa.Column('name', sa.String(128), primary_key=True),
        sa.Column('concurrency_limit', sa.Integer()),
        sa.Column('total_concurrency_limit', sa.Integer()),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    )
    op.execute(f"UPDATE runs SET concurrency_queue = task_identifier "
               f"WHERE status NOT IN {_FINAL}")
    _drop_indexes()
    _indexes('concurrency_queue')


def downgrade() -> None:
    _drop_indexes()
    _indexes('task_identifier')
    op.drop_table('queue_definitions')
    with op.batch_alter_table('task_definitions') as batch:
        batch.drop_column('concurrency_queue')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('concurrency_queue')
