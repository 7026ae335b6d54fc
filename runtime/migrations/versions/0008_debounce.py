"""runs: debounced triggers

``debounce_key`` holds a debounced trigger's key while its run is DELAYED, and
``debounce_until`` the latest start its ``max_delay`` allows; a partial unique index keeps
one DELAYED run per (task, key) (runtime/store/debounce.py).

Revision ID: runtime_0007
Revises: runtime_0006
Create Date: 2026-11-27 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import UTCDateTime

revision = 'runtime_0007'
down_revision = 'runtime_0006'
branch_labels = None
depends_on = None

_DELAYED_WITH_KEY = sa.text("debounce_key IS NOT NULL AND status = 'DELAYED'")


def upgrade() -> None:
    op.add_column('runs', sa.Column('debounce_key', sa.String(512)))
    op.add_column('runs', sa.Column('debounce_until', UTCDateTime(timezone=True)))
    op.create_index('ix_runs_debounce', 'runs', ['task_identifier', 'debounce_key'],
                    unique=True, postgresql_where=_DELAYED_WITH_KEY,
                    sqlite_where=_DELAYED_WITH_KEY)


def downgrade() -> None:
    op.drop_index('ix_runs_debounce', table_name='runs')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('debounce_until')
        batch.drop_column('debounce_key')
