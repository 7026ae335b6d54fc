"""runs: partial idempotency index (fewer index writes per status update)

Most runs carry no idempotency key, yet the full unique index took a new entry on every
non-HOT update of a run (claim, finish): two per run for nothing. NULL keys never conflict,
so a partial index enforces the same rule.

Revision ID: runtime_0002
Revises: 0001
Create Date: 2026-11-26 15:40:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'runtime_0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_WHERE = sa.text('idempotency_key IS NOT NULL')


def upgrade() -> None:
    op.drop_index('ix_runs_idempotency', table_name='runs')
    op.create_index(
        'ix_runs_idempotency',
        'runs',
        ['task_identifier', 'idempotency_key'],
        unique=True,
        postgresql_where=_WHERE,
        sqlite_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index('ix_runs_idempotency', table_name='runs')
    op.create_index(
        'ix_runs_idempotency', 'runs', ['task_identifier', 'idempotency_key'], unique=True
    )
