"""Build the SQLAlchemy engine for the store: Postgres (psycopg 3) or SQLite (embedded)."""

from __future__ import annotations

import datetime as _dt
import decimal
import json
import uuid
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"value of type {type(value).__name__} is not JSON serializable")


try:  # orjson: ~5-10x faster; every JSON column and hot-path parameter goes through here
    import orjson

    _ORJSON_OPTS = orjson.OPT_NON_STR_KEYS
except ImportError:  # pragma: no cover - a core dependency; the stdlib path stays correct
    orjson = None  # type: ignore[assignment]


def dumps(value: Any) -> str:
    """Compact JSON. orjson when it can (what it refuses — integers beyond 64 bits, for
    one — goes through the stdlib encoder, which gives the same document)."""
    if orjson is not None:
        try:
            return orjson.dumps(value, default=_json_default, option=_ORJSON_OPTS).decode()
        except TypeError:
            pass
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def build_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    return create_engine(
        parsed,
        json_serializer=dumps,
        pool_size=10,
        max_overflow=20,
        # no ping per checkout (a round trip on every statement); the hot path retries
        # once on a dropped connection and the rest recycles connections hourly
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_use_lifo=True,
    )


def _sqlite_engine(url: Any) -> Engine:
    if url.database:
        from pathlib import Path

        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        json_serializer=dumps,
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=10,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN IMMEDIATE
        # ourselves so two writers queue on the busy timeout instead of deadlocking.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
