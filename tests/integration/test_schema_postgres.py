"""The migrations build the declared schema on Postgres too (types compared)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runtime.migrate import upgrade
from runtime.store.engine import build_engine
from runtime.store.tables import metadata

pytestmark = pytest.mark.integration


def test_migrations_build_the_declared_schema_on_postgres(pg_url: str):
    schema = f"m_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    engine = build_engine(f"{pg_url}?options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(ctx, metadata) == []
    finally:
        engine.dispose()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
