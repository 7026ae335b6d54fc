"""run_webhook_endpoints: run webhook endpoints ops add at runtime, encrypted

``BUSTER_RUN_WEBHOOKS`` needs a redeploy to add a Slack alert; endpoints in this table are
added and removed from the CLI, the SDK or the HTTP API and every process picks them up
within ``BUSTER_RUN_WEBHOOK_REFRESH_SECONDS`` (runtime/run_webhook_endpoints.py). The URL
(Slack's holds its token) and the signing secret are stored only inside ``config``, a Fernet
token.

Revision ID: runtime_0012
Revises: runtime_0011
Create Date: 2026-12-06 08:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from runtime.store.tables import UTCDateTime

revision = 'runtime_0012'
down_revision = 'runtime_0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'run_webhook_endpoints',
        sa.Column('name', sa.String(64), primary_key=True),
        sa.Column('config', sa.LargeBinary(), nullable=False),
        sa.Column('created_by', sa.String(256)),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('run_webhook_endpoints')
