"""SQL for data sources and catalog snapshots (the public API is ``runtime.datasources``).

Atomic replacement of a catalog rests on two rules: a snapshot's table rows are written
while it is ``staged`` (readers never look at staged snapshots) and are never changed once it
is ``current``; publishing flips ``current`` → ``previous`` and ``staged`` → ``current`` in
one transaction. Readers check the row count they got against the snapshot's
``table_count`` and start over if a publish deleted the snapshot under them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from ..durations import utcnow
from . import tables as t
from .repository import Store

#: a staged snapshot older than this belongs to a run that died; the next publish drops it
STALE_STAGED = timedelta(hours=24)
_INSERT_CHUNK = 1000  # rows per INSERT: keeps statements well under driver parameter limits


class DuplicateNameError(Exception):
    pass


# ------------------------------------------------------------------ data sources
def insert_source(store: Store, row: dict[str, Any]) -> None:
    try:
        with store.begin() as conn:
            conn.execute(insert(t.data_sources).values(**row))
    except IntegrityError as exc:
        raise DuplicateNameError(row["name"]) from exc


def replace_credentials(store: Store, source_id: str, type_: str, blob: bytes) -> None:
    with store.begin() as conn:
        conn.execute(
            update(t.data_sources)
            .where(t.data_sources.c.id == source_id)
            .values(type=type_, credentials=blob, updated_at=utcnow())
        )


def find_source(store: Store, id_or_name: str) -> RowMapping | None:
    """By id first (ids look like ``ds_…``), then by name."""
    c = t.data_sources.c
    with store.autocommit.connect() as conn:
        row = conn.execute(select(t.data_sources).where(c.id == id_or_name)).mappings().first()
        if row is None:
            row = (
                conn.execute(select(t.data_sources).where(c.name == id_or_name)).mappings().first()
            )
        return row


def list_sources(store: Store) -> list[RowMapping]:
    c = t.data_sources.c
    with store.autocommit.connect() as conn:
        return list(
            conn.execute(
                select(c.id, c.name, c.type, c.created_at, c.updated_at).order_by(c.name)
            ).mappings()
        )


def delete_source(store: Store, source_id: str) -> bool:
    # Explicit deletes instead of relying on ON DELETE CASCADE alone: SQLite enforces
    # foreign keys only when the connection enabled them.
    with store.begin() as conn:
        snaps = select(t.catalog_snapshots.c.id).where(t.catalog_snapshots.c.source_id == source_id)
        conn.execute(delete(t.catalog_tables).where(t.catalog_tables.c.snapshot_id.in_(snaps)))
        conn.execute(
            delete(t.catalog_snapshots).where(t.catalog_snapshots.c.source_id == source_id)
        )
        n = conn.execute(delete(t.data_sources).where(t.data_sources.c.id == source_id)).rowcount
    return bool(n)


# ------------------------------------------------------------------ catalog snapshots
def stage_snapshot(
    store: Store,
    snapshot: dict[str, Any],
    tables: Sequence[dict[str, Any]],
    conn: Connection | None = None,
) -> None:
    """Insert a ``staged`` snapshot and its table rows."""
    if conn is None:
        with store.begin() as c:
            stage_snapshot(store, snapshot, tables, c)
        return
    conn.execute(insert(t.catalog_snapshots).values(**{**snapshot, "status": "staged"}))
    for i in range(0, len(tables), _INSERT_CHUNK):
        conn.execute(insert(t.catalog_tables), list(tables[i : i + _INSERT_CHUNK]))


def publish_snapshot(
    store: Store, source_id: str, snapshot_id: str, conn: Connection | None = None
) -> bool:
    """Make ``snapshot_id`` the source's current catalog in one transaction. Returns False
    when it was already current (publishing twice is harmless: replays and retries)."""
    if conn is None:
        with store.begin() as c:
            return publish_snapshot(store, source_id, snapshot_id, c)
    s = t.catalog_snapshots
    if store.is_postgres:
        # Two publishes of one source take turns on the source row; without the lock both
        # could demote the old snapshot and collide on the one-current unique index.
        conn.execute(
            select(t.data_sources.c.id).where(t.data_sources.c.id == source_id).with_for_update()
        )
    status = conn.execute(select(s.c.status).where(s.c.id == snapshot_id)).scalar()
    if status == "current":
        return False
    if status != "staged":
        raise LookupError(f"catalog snapshot {snapshot_id} is {status or 'gone'}, not staged")
    now = utcnow()
    doomed = select(s.c.id).where(
        s.c.source_id == source_id,
        s.c.id != snapshot_id,
        (s.c.status == "previous")
        | ((s.c.status == "staged") & (s.c.created_at < now - STALE_STAGED)),
    )
    doomed_ids = [r[0] for r in conn.execute(doomed)]
    if doomed_ids:
        conn.execute(delete(t.catalog_tables).where(t.catalog_tables.c.snapshot_id.in_(doomed_ids)))
        conn.execute(delete(s).where(s.c.id.in_(doomed_ids)))
    conn.execute(
        update(s)
        .where(s.c.source_id == source_id, s.c.status == "current")
        .values(status="previous")
    )
    conn.execute(update(s).where(s.c.id == snapshot_id).values(status="current", published_at=now))
    return True


def discard_snapshot(store: Store, snapshot_id: str) -> None:
    """Drop a staged snapshot (a run that gave up); current ones are never discarded."""
    s = t.catalog_snapshots
    with store.begin() as conn:
        staged = conn.execute(
            select(s.c.id).where(s.c.id == snapshot_id, s.c.status == "staged")
        ).scalar()
        if staged:
            conn.execute(delete(t.catalog_tables).where(t.catalog_tables.c.snapshot_id == staged))
            conn.execute(delete(s).where(s.c.id == staged))


def current_snapshot(store: Store, source_id: str) -> RowMapping | None:
    s = t.catalog_snapshots
    with store.autocommit.connect() as conn:
        return (
            conn.execute(select(s).where(s.c.source_id == source_id, s.c.status == "current"))
            .mappings()
            .first()
        )


def get_snapshot(store: Store, snapshot_id: str) -> RowMapping | None:
    s = t.catalog_snapshots
    with store.autocommit.connect() as conn:
        return conn.execute(select(s).where(s.c.id == snapshot_id)).mappings().first()


def table_docs(
    store: Store, snapshot_id: str, positions: Iterable[int] | None = None
) -> list[tuple[int, str]]:
    """``(position, doc)`` of a snapshot's tables in catalog order."""
    c = t.catalog_tables.c
    stmt = select(c.position, c.doc).where(c.snapshot_id == snapshot_id).order_by(c.position)
    if positions is not None:
        stmt = stmt.where(c.position.in_(list(positions)))
    with store.autocommit.connect() as conn:
        return [(int(p), str(d)) for p, d in conn.execute(stmt)]


def search_docs(store: Store, snapshot_id: str, needle: str, limit: int) -> list[str]:
    c = t.catalog_tables.c
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = (
        select(c.doc)
        .where(c.snapshot_id == snapshot_id, c.search_text.like(pattern, escape="\\"))
        .order_by(c.position)
        .limit(limit)
    )
    with store.autocommit.connect() as conn:
        return [str(d) for (d,) in conn.execute(stmt)]


def update_staged_tables(store: Store, snapshot_id: str, rows: Sequence[dict[str, Any]]) -> int:
    """Overwrite table rows (``position``, ``doc``, ``search_text``) of a *staged* snapshot;
    a snapshot already published is left alone (a late child cannot change it)."""
    if not rows:
        return 0
    c = t.catalog_tables.c
    with store.begin() as conn:
        staged = conn.execute(
            select(t.catalog_snapshots.c.id).where(
                t.catalog_snapshots.c.id == snapshot_id, t.catalog_snapshots.c.status == "staged"
            )
        ).scalar()
        if not staged:
            return 0
        n = 0
        for row in rows:
            n += conn.execute(
                update(t.catalog_tables)
                .where(c.snapshot_id == snapshot_id, c.position == row["position"])
                .values(doc=row["doc"], search_text=row["search_text"])
            ).rowcount
        return n


def count_tables(store: Store, snapshot_id: str) -> int:
    c = t.catalog_tables.c
    with store.autocommit.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(c.snapshot_id == snapshot_id)).scalar() or 0
        )
