"""runs and task definitions: concurrency limits

A task's ``concurrency_limit`` (synced with its definition, copied onto each run) caps how
many of its runs execute at once, per ``concurrency_key``. ``waiting_for_slot`` marks a
QUEUED run whose claim found every slot taken; the timer loop wakes it when one frees.

Revision ID: runtime_0003
Revises: runtime_0002
Create Date: 2026-11-27 09:20:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'runtime_0003'
down_revision = 'runtime_0002'
branch_labels = None
depends_on = None

_SLOTS = sa.text("concurrency_limit IS NOT NULL AND status IN ('EXECUTING', 'QUEUED')")
_WAITING = sa.text("waiting_for_slot AND status = 'QUEUED'")


def upgrade() -> None:
    op.add_column('runs', sa.Column('concurrency_key', sa.String(256)))
    op.add_column('runs', sa.Column('concurrency_limit', sa.Integer()))
    op.add_column(
        'runs',
        sa.Column('waiting_for_slot', sa.Boolean(), nullable=False,
                  server_default=sa.text('false')),
    )
    op.add_column('task_definitions', sa.Column('concurrency_limit', sa.Integer()))
    op.create_index('ix_runs_slots', 'runs',
                    ['task_identifier', 'concurrency_key', 'status', 'waiting_for_slot'],
                    postgresql_where=_SLOTS, sqlite_where=_SLOTS)
    op.create_index('ix_runs_slot_waiting', 'runs', ['task_identifier', 'concurrency_key', 'id'],
                    postgresql_where=_WAITING, sqlite_where=_WAITING)


def downgrade() -> None:
    op.drop_index('ix_runs_slot_waiting', table_name='runs')
    op.drop_index('ix_runs_slots', table_name='runs')
    with op.batch_alter_table('task_definitions') as batch:
        batch.drop_column('concurrency_limit')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('waiting_for_slot')
        batch.drop_column('concurrency_limit')
        batch.drop_column('concurrency_key')
