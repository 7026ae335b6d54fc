"""task definitions: a total concurrency limit over all of a task's concurrency keys

Read by the slot claim from the task's definition (the current code's), while the per-key
limit is copied onto each run.

Revision ID: runtime_0005
Revises: runtime_0004
Create Date: 2026-11-27 12:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'runtime_0005'
down_revision = 'runtime_0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('task_definitions', sa.Column('total_concurrency_limit', sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table('task_definitions') as batch:
        batch.drop_column('total_concurrency_limit')
