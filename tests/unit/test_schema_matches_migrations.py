"""A database built from the Alembic migrations equals the declared schema (tables.py)."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from runtime.migrate import upgrade
from runtime.store.engine import build_engine
from runtime.store.tables import metadata


def test_migrations_build_the_declared_schema(tmp_path: Path):
    engine = build_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, metadata)
    engine.dispose()
    assert diff == []
