"""Alembic environment: the connection comes from ``runtime.migrate``, never from a URL here."""

from __future__ import annotations

from alembic import context

from runtime.store.tables import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # autogenerate from the command line
    from runtime.store.engine import build_engine

    engine = config.attributes.get("engine") or build_engine(
        config.get_main_option("sqlalchemy.url") or "sqlite:///:memory:"
    )
    connection = engine.connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
