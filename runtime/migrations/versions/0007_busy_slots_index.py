"""runs: an index of the limited runs holding a slot or on their way to one

The wake step counted every group's slots with one GROUP BY over ``ix_runs_slots``, which
also holds the runs waiting for a slot: 33 ms a tick with 100,000 of them (a paused queue,
or a limited task with a backlog), and the same on every hand-on of a freed slot. This
index leaves the waiting runs out; they are found group by group in
``ix_runs_slot_waiting``.

Revision ID: runtime_0006
Revises: runtime_0005
Create Date: 2026-11-27 14:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'runtime_0006'
down_revision = 'runtime_0005'
branch_labels = None
depends_on = None

_BUSY = sa.text("concurrency_limit IS NOT NULL AND (status = 'EXECUTING' "
                "OR (status = 'QUEUED' AND NOT waiting_for_slot))")


def upgrade() -> None:
    op.create_index('ix_runs_busy_slots', 'runs',
                    ['task_identifier', 'status', 'concurrency_key'],
                    postgresql_where=_BUSY, sqlite_where=_BUSY)


def downgrade() -> None:
    op.drop_index('ix_runs_busy_slots', table_name='runs')
