"""agent: analyst-agent artifacts (metric and dashboard specs per run and session)

Revision ID: agent_0001
Revises: 0001
Create Date: 2026-11-26 15:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import runtime.store.tables

revision = 'agent_0001'
down_revision = '0001'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'agent_artifacts',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('run_id', sa.String(length=40), nullable=False),
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('title', sa.String(length=512), nullable=False),
        sa.Column('content', _JSON, nullable=False),
        sa.Column('created_at', runtime.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', runtime.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_agent_artifacts_run', 'agent_artifacts', ['run_id', 'created_at'])
    op.create_index('ix_agent_artifacts_session', 'agent_artifacts',
                    ['session_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_agent_artifacts_session', table_name='agent_artifacts')
    op.drop_index('ix_agent_artifacts_run', table_name='agent_artifacts')
    op.drop_table('agent_artifacts')
