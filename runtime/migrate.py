"""Alembic migrations, run programmatically (``buster-jobs migrate`` or auto on first use).

Several processes may start at once: on Postgres an advisory lock makes them take turns.
Each area (runtime, schedules, catalog, agent, dashboard) may add its own revision branch
off ``0001``; ``heads`` applies all of them.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

_HERE = Path(__file__).parent / "migrations"
_LOCK_KEY = 0x6275737465720001  # "buster" + 1


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
        try:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
        except BaseException:
            # a failed step leaves the transaction aborted: the unlock below would fail
            # with "current transaction is aborted" and hide the step's own error
            conn.rollback()
            raise
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()
