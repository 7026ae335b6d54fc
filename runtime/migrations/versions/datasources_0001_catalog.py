"""data sources: introspected catalog snapshots

Revision ID: datasources_0001
Revises: 0001
Create Date: 2026-11-26 14:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import runtime.store.tables

revision = 'datasources_0001'
down_revision = '0001'
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'catalog_snapshots',
        sa.Column('id', sa.String(length=48), nullable=False),
        sa.Column('source_id', sa.String(length=48), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('warehouse_type', sa.String(length=32), nullable=False),
        sa.Column('introspected_at', runtime.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', runtime.store.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column('published_at', runtime.store.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column('run_id', sa.String(length=40), nullable=True),
        sa.Column('table_count', sa.Integer(), nullable=False),
        sa.Column('counts', _JSON, nullable=False),
        sa.Column('databases', _JSON, nullable=False),
        sa.Column('schemas', _JSON, nullable=False),
        sa.ForeignKeyConstraint(['source_id'], ['data_sources.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_catalog_snapshots_source', 'catalog_snapshots', ['source_id', 'status'],
                    unique=False)
    op.create_index('ux_catalog_snapshots_current', 'catalog_snapshots', ['source_id'],
                    unique=True, postgresql_where=sa.text("status = 'current'"),
                    sqlite_where=sa.text("status = 'current'"))
    op.create_table(
        'catalog_tables',
        sa.Column('snapshot_id', sa.String(length=48), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('database_name', sa.String(length=256), nullable=False),
        sa.Column('schema_name', sa.String(length=256), nullable=False),
        sa.Column('name', sa.String(length=256), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('search_text', sa.Text(), nullable=False),
        sa.Column('doc', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['snapshot_id'], ['catalog_snapshots.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('snapshot_id', 'position'),
    )
    op.create_index('ix_catalog_tables_name', 'catalog_tables',
                    ['snapshot_id', 'schema_name', 'name'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_catalog_tables_name', table_name='catalog_tables')
    op.drop_table('catalog_tables')
    op.drop_index('ux_catalog_snapshots_current', table_name='catalog_snapshots',
                  postgresql_where=sa.text("status = 'current'"),
                  sqlite_where=sa.text("status = 'current'"))
    op.drop_index('ix_catalog_snapshots_source', table_name='catalog_snapshots')
    op.drop_table('catalog_snapshots')
