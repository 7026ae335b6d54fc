"""SQL for schedules and their fires (the ``schedules`` and ``schedule_fires`` tables).

Every write that changes what should fire also ``NOTIFY``s ``CHANNEL`` on Postgres, in the
same transaction, so running schedulers reload as soon as it commits. SQLite has no
NOTIFY: schedulers poll ``fingerprint()`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.engine import Connection

from ..durations import utcnow
from ..statuses import FINAL_STATUSES
from . import tables as t
from .repository import Row, Store

CHANNEL = "buster_schedules"

s = t.schedules.c
f = t.schedule_fires.c


def notify(store: Store, conn: Connection, schedule_id: str) -> None:
    if store.is_postgres:
        conn.execute(text("SELECT pg_notify(:ch, :id)"), {"ch": CHANNEL, "id": schedule_id})


# ---------------------------------------------------------------------------- CRUD
def insert(store: Store, row: dict[str, Any]) -> Row:
    """Insert a schedule; with a deduplication key that exists, update that one instead
    (one statement, so concurrent creates with one key end as one schedule)."""
    stmt = store._insert(t.schedules).values(**row)
    if row.get("deduplication_key") is not None:
        keep = {"id", "created_at", "active", "type", "deduplication_key"}
        stmt = stmt.on_conflict_do_update(
            index_elements=["deduplication_key"],
            set_={k: stmt.excluded[k] for k in row if k not in keep},
        )
    with store.engine.begin() as conn:
        got = conn.execute(stmt.returning(*t.schedules.c)).mappings().one()
        notify(store, conn, got["id"])
        return got


def get(store: Store, schedule_id: str) -> Row | None:
    with store.autocommit.connect() as conn:
        return conn.execute(select(t.schedules).where(s.id == schedule_id)).mappings().first()


def list_page(
    store: Store,
    *,
    tasks: Sequence[str] | None,
    active: bool | None,
    cursor: str | None,
    limit: int,
) -> list[Row]:
    """Keyset pagination by id, newest imperative schedules first."""
    q = select(t.schedules)
    if tasks:
        q = q.where(s.task_identifier.in_(list(tasks)))
    if active is not None:
        q = q.where(s.active.is_(active))
    if cursor:
        q = q.where(s.id < cursor)
    with store.autocommit.connect() as conn:
        return list(conn.execute(q.order_by(s.id.desc()).limit(limit)).mappings())


def update_row(store: Store, schedule_id: str, values: dict[str, Any]) -> Row | None:
    with store.engine.begin() as conn:
        got = (
            conn.execute(
                update(t.schedules)
                .where(s.id == schedule_id)
                .values(updated_at=utcnow(), **values)
                .returning(*t.schedules.c)
            )
            .mappings()
            .first()
        )
        if got is not None:
            notify(store, conn, schedule_id)
        return got


def delete_row(store: Store, schedule_id: str) -> bool:
    """Delete the schedule; its fire history goes too (runs keep their schedule_id)."""
    with store.engine.begin() as conn:
        gone = conn.execute(delete(t.schedules).where(s.id == schedule_id)).rowcount == 1
        if gone:
            conn.execute(delete(t.schedule_fires).where(f.schedule_id == schedule_id))
            notify(store, conn, schedule_id)
        return gone


def last_runs(store: Store, ids: Sequence[str]) -> dict[str, datetime]:
    """Latest fire that started a run, per schedule (for ``Schedule.last_run``)."""
    if not ids:
        return {}
    with store.autocommit.connect() as conn:
        rows = conn.execute(
            select(f.schedule_id, func.max(f.fire_time))
            .where(f.schedule_id.in_(list(ids)), f.skipped.is_(False))
            .group_by(f.schedule_id)
        )
        return {sid: ts for sid, ts in rows if ts is not None}


# ---------------------------------------------------------------------------- scheduler
def fingerprint(store: Store) -> tuple[Any, ...]:
    """Changes whenever a schedule is added, changed or deleted (count + latest update)."""
    with store.autocommit.connect() as conn:
        row = conn.execute(select(func.count(), func.max(s.updated_at))).one()
        return tuple(row)


def active_schedules(store: Store) -> list[Row]:
    cols = (s.id, s.cron, s.timezone, s.created_at)
    with store.autocommit.connect() as conn:
        return list(conn.execute(select(*cols).where(s.active.is_(True))).mappings())


def for_firing(store: Store, conn: Connection, ids: Sequence[str], before: datetime) -> list[Row]:
    """The schedules about to fire, still active, each with its last fire before ``before``
    (a correlated max over the (schedule_id, fire_time) primary key: an index probe)."""
    last = (
        select(func.max(f.fire_time))
        .where(f.schedule_id == s.id, f.fire_time < before, f.skipped.is_(False))
        .scalar_subquery()
    )
    q = select(t.schedules, last.label("last_fire")).where(s.id.in_(list(ids)), s.active)
    return list(conn.execute(q).mappings())


def active_run_schedules(conn: Connection, ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Of these schedules, those whose latest run is not final (for ``skip_if_active``):
    schedule id → (run id, status). One probe of ``ix_runs_schedule`` per schedule."""
    r = t.runs.c
    busy: dict[str, tuple[str, str]] = {}
    for sid in ids:
        row = conn.execute(
            select(r.id, r.status).where(r.schedule_id == sid).order_by(r.id.desc()).limit(1)
        ).first()
        if row is not None and row[1] not in FINAL_STATUSES:
            busy[sid] = (row[0], row[1])
    return busy


def _bulk_insert(
    store: Store,
    conn: Connection,
    table: Any,
    rows: list[dict[str, Any]],
    conflict: Sequence[str],
    returning: Sequence[str],
    conflict_where: str | None = None,
) -> list[tuple]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING for many rows at once.

    Postgres: the rows travel as ONE jsonb parameter expanded server-side by
    ``jsonb_populate_recordset``, in key order. A 1,000-row multi-VALUES statement with
    ~40 columns costs ~0.3 s of client CPU (SQL rendering + psycopg's placeholder
    conversion, uncached for long statements); this costs ~10 ms. SQLite: executemany.
    """
    if store.is_postgres:
        from .engine import dumps

        cols = ", ".join(f'"{c}"' for c in rows[0])
        order = ", ".join(f'"{c}"' for c in conflict)
        # a partial unique index is only inferred when ON CONFLICT repeats its predicate
        where = f" WHERE {conflict_where}" if conflict_where else ""
        q = text(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM "
            f"jsonb_populate_recordset(NULL::{table.name}, CAST(:rows AS jsonb)) "
            f"ORDER BY {order} ON CONFLICT ({order}){where} DO NOTHING "
            f"RETURNING {', '.join(returning)}"
        )
        return [tuple(r) for r in conn.execute(q, {"rows": dumps(rows)})]
    stmt = (
        store._insert(table)
        .on_conflict_do_nothing(
            index_elements=list(conflict),
            index_where=text(conflict_where) if conflict_where else None,
        )
        .returning(*(table.c[c] for c in returning))
    )
    return [tuple(r) for r in conn.execute(stmt, rows)]


def claim_fires(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> set[tuple]:
    """Insert fire rows; return the (schedule_id, fire_time) keys this caller inserted. The
    primary key makes a tick fire once however many schedulers run. Rows go in key order
    so two schedulers inserting the same ticks lock them in the same order (no deadlock):
    the second waits for the first to commit, then finds every key taken."""
    if not rows:
        return set()
    rows = sorted(rows, key=lambda r: (r["schedule_id"], r["fire_time"]))
    got = _bulk_insert(
        store,
        conn,
        t.schedule_fires,
        rows,
        ["schedule_id", "fire_time"],
        ["schedule_id", "fire_time"],
    )
    return {
        (sid, ft if isinstance(ft, datetime) else datetime.fromisoformat(ft)) for sid, ft in got
    }


def insert_runs(store: Store, conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Scheduled runs (they carry no tags); returns the ids inserted (a run whose
    idempotency key exists already is skipped)."""
    if not rows:
        return set()
    got = _bulk_insert(
        store,
        conn,
        t.runs,
        rows,
        ["task_identifier", "idempotency_key"],
        ["id"],
        conflict_where="idempotency_key IS NOT NULL",
    )
    return {r[0] for r in got}


def link_fire(conn: Connection, schedule_id: str, fire_time: datetime, run_id: str) -> None:
    conn.execute(
        update(t.schedule_fires)
        .where(f.schedule_id == schedule_id, f.fire_time == fire_time)
        .values(run_id=run_id)
    )


def fires(store: Store, schedule_id: str) -> list[Row]:
    with store.autocommit.connect() as conn:
        return list(
            conn.execute(
                select(t.schedule_fires).where(f.schedule_id == schedule_id).order_by(f.fire_time)
            ).mappings()
        )
