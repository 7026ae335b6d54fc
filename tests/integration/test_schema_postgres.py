"""The migrations build the declared schema on Postgres too (types compared)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from runtime.migrate import _LOCK_KEY, upgrade
from runtime.store.engine import build_engine
from runtime.store.tables import metadata

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def _scratch_schema(pg_url: str) -> Iterator[Engine]:
    """An engine on a schema of its own, dropped afterwards."""
    schema = f"m_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    engine = build_engine(f"{pg_url}?options=-csearch_path%3D{schema}")
    try:
        yield engine
    finally:
        engine.dispose()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _assert_declared_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, metadata) == []


def test_migrations_build_the_declared_schema_on_postgres(pg_url: str):
    with _scratch_schema(pg_url) as engine:
        upgrade(engine)
        upgrade(engine)  # a second run is a no-op
        _assert_declared_schema(engine)


def test_a_failed_migration_reports_its_own_error_and_frees_the_lock(pg_url: str):
    # a step that fails (here: an index already there, made by hand) is the error raised,
    # not the aborted transaction's "current transaction is aborted" from the unlock; and
    # the advisory lock is released, so the next upgrade runs rather than waits forever
    import sqlalchemy as sa

    with _scratch_schema(pg_url) as engine:
        upgrade(engine, "runtime_0006")
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX ix_runs_debounce ON runs (id)"))
        with pytest.raises(sa.exc.ProgrammingError, match="ix_runs_debounce"):
            upgrade(engine)
        with psycopg.connect(pg_url, autocommit=True) as other:  # another session
            free = other.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY]).fetchone()
            assert free == (True,)
            other.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_runs_debounce"))
        upgrade(engine)
        _assert_declared_schema(engine)
