"""run_metadata_ops: changes sent to a parent's or root's metadata

``metadata.parent.increment(...)`` and the like, queued per target run and applied in
order by its worker while it executes, by the timer loop otherwise
(runtime/store/metadata_ops.py).

Revision ID: runtime_0008
Revises: runtime_0007
Create Date: 2026-11-27 16:15:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import Json, UTCDateTime

revision = 'runtime_0008'
down_revision = 'runtime_0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_metadata_ops',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  primary_key=True, autoincrement=True),
        sa.Column('run_id', sa.String(40), sa.ForeignKey('runs.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('ops', Json, nullable=False),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_run_metadata_ops_run', 'run_metadata_ops', ['run_id', 'id'])


def downgrade() -> None:
    op.drop_index('ix_run_metadata_ops_run', table_name='run_metadata_ops')
    op.drop_table('run_metadata_ops')
