"""SQL for the dashboard and its HTTP API: API keys, two-phase batches, request
idempotency, and the read-only aggregates the pages and ``/metrics`` show.

Same rules as ``repository.py``: guarantees come from unique keys (a request key, a batch
item index), not from check-then-act in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.engine import RowMapping

from ..durations import utcnow
from ..ids import timestamp_prefix
from ..statuses import FINAL_STATUSES, RunStatus
from . import tables as t
from .repository import Store
from .slots import controls, effective_limit, usage

Row = RowMapping


# ---------------------------------------------------------------------- API keys
def create_api_key(store: Store, row: dict[str, Any]) -> None:
    with store.engine.begin() as conn:
        conn.execute(t.api_keys.insert().values(**row))


def list_api_keys(store: Store) -> list[Row]:
    with store.autocommit.connect() as conn:
        q = select(t.api_keys).order_by(t.api_keys.c.created_at)
        return list(conn.execute(q).mappings())


def revoke_api_key(store: Store, key_id: str) -> bool:
    with store.autocommit.connect() as conn:
        res = conn.execute(
            update(t.api_keys)
            .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return bool(res.rowcount)


def find_api_key(store: Store, key_hash: str) -> Row | None:
    """An active key by hash (revoked keys are not found)."""
    with store.autocommit.connect() as conn:
        return (
            conn.execute(
                select(t.api_keys).where(
                    t.api_keys.c.key_hash == key_hash, t.api_keys.c.revoked_at.is_(None)
                )
            )
            .mappings()
            .first()
        )


def api_key_active(store: Store, key_id: str) -> bool:
    with store.autocommit.connect() as conn:
        return (
            conn.execute(
                select(t.api_keys.c.id).where(
                    t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None)
                )
            ).first()
            is not None
        )


def touch_api_key(store: Store, key_id: str) -> None:
    with store.autocommit.connect() as conn:
        conn.execute(
            update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=utcnow())
        )


# ---------------------------------------------------------------------- request keys
def claim_request(store: Store, scope: str, key: str) -> bool:
    """True when this call owns the request key (first arrival); False when another
    request with the same key got there first."""
    stmt = (
        store._insert(t.api_requests)
        .values(scope=scope, request_key=key, created_at=utcnow())
        .on_conflict_do_nothing()
        .returning(t.api_requests.c.scope)
    )
    with store.autocommit.connect() as conn:
        return conn.execute(stmt).first() is not None


def get_request(store: Store, scope: str, key: str) -> Row | None:
    r = t.api_requests.c
    with store.autocommit.connect() as conn:
        return (
            conn.execute(select(t.api_requests).where(r.scope == scope, r.request_key == key))
            .mappings()
            .first()
        )


def finish_request(store: Store, scope: str, key: str, status: int, body: Any) -> None:
    r = t.api_requests.c
    with store.autocommit.connect() as conn:
        conn.execute(
            update(t.api_requests)
            .where(r.scope == scope, r.request_key == key)
            .values(status_code=status, body=body)
        )


def release_request(store: Store, scope: str, key: str) -> None:
    """Forget a claim whose request failed on our side, so the SDK's retry runs again."""
    r = t.api_requests.c
    with store.autocommit.connect() as conn:
        conn.execute(delete(t.api_requests).where(r.scope == scope, r.request_key == key))


def prune_requests(store: Store, older_than: datetime) -> int:
    with store.autocommit.connect() as conn:
        res = conn.execute(delete(t.api_requests).where(t.api_requests.c.created_at < older_than))
        return int(res.rowcount or 0)


# ---------------------------------------------------------------------- batches
def create_batch(store: Store, row: dict[str, Any]) -> tuple[Row, bool]:
    """Insert a batch; a batch with the same request key or idempotency key is returned
    instead (``created`` False)."""
    b = t.api_batches.c
    with store.engine.begin() as conn:
        got = conn.execute(
            store._insert(t.api_batches).values(**row).on_conflict_do_nothing().returning(b.id)
        ).first()
        if got is not None:
            new = conn.execute(select(t.api_batches).where(b.id == row["id"])).mappings().one()
            return new, True
        conds = []
        if row.get("request_key"):
            conds.append(b.request_key == row["request_key"])
        if row.get("idempotency_key"):
            conds.append(b.idempotency_key == row["idempotency_key"])
        from sqlalchemy import or_

        existing = conn.execute(select(t.api_batches).where(or_(*conds))).mappings().first()
        if existing is None:
            raise RuntimeError("batch id collision")  # ids are random; cannot happen
        return existing, False


def get_batch(store: Store, batch_id: str) -> Row | None:
    with store.autocommit.connect() as conn:
        return (
            conn.execute(select(t.api_batches).where(t.api_batches.c.id == batch_id))
            .mappings()
            .first()
        )


def add_batch_items(
    store: Store, batch_id: str, items: Sequence[tuple[int, dict[str, Any]]]
) -> tuple[int, int, bool, list[str]]:
    """Insert the runs of the items whose index this batch has not seen, in one transaction
    with the (batch, index) records, so a re-sent stream creates nothing twice. Items whose
    idempotency key is taken map to the existing run. Returns (accepted, deduplicated,
    sealed, ids of runs inserted here)."""
    bi = t.api_batch_items.c
    now = utcnow()
    with store.engine.begin() as conn:
        lock = select(t.api_batches).where(t.api_batches.c.id == batch_id)
        if store.is_postgres:
            lock = lock.with_for_update()  # concurrent streams of one batch take turns
        batch = conn.execute(lock).mappings().one()
        seen = set(
            conn.execute(
                select(bi.item_index).where(
                    bi.batch_id == batch_id, bi.item_index.in_([i for i, _ in items])
                )
            ).scalars()
        )
        fresh: dict[int, dict[str, Any]] = {}
        for index, row in items:
            if index not in seen:
                fresh.setdefault(index, row)
        inserted = store.insert_runs(list(fresh.values()), conn=conn) if fresh else set()
        records = []
        for index, row in fresh.items():
            run_id = row["id"]
            if run_id not in inserted:  # idempotency key taken: the existing run
                run_id = conn.execute(
                    select(t.runs.c.id).where(
                        t.runs.c.task_identifier == row["task_identifier"],
                        t.runs.c.idempotency_key == row["idempotency_key"],
                    )
                ).scalar_one()
            records.append(
                {"batch_id": batch_id, "item_index": index, "run_id": run_id, "created_at": now}
            )
        if records:
            conn.execute(t.api_batch_items.insert(), records)
        count = conn.execute(
            select(func.count()).select_from(t.api_batch_items).where(bi.batch_id == batch_id)
        ).scalar_one()
        sealed = count >= batch["run_count"]
        if sealed and not batch["sealed"]:
            conn.execute(
                update(t.api_batches)
                .where(t.api_batches.c.id == batch_id)
                .values(sealed=True, sealed_at=now, updated_at=now)
            )
    return len(fresh), len(items) - len(fresh), sealed, sorted(inserted)


def batch_run_ids(store: Store, batch_id: str) -> list[str]:
    bi = t.api_batch_items.c
    with store.autocommit.connect() as conn:
        ids = list(
            conn.execute(
                select(bi.run_id).where(bi.batch_id == batch_id).order_by(bi.item_index)
            ).scalars()
        )
        if not ids:  # a batch triggered from Python (tasks.batch_trigger): runs carry its id
            ids = list(
                conn.execute(
                    select(t.runs.c.id).where(t.runs.c.batch_id == batch_id).order_by(t.runs.c.id)
                ).scalars()
            )
        return ids


def batch_bounds(store: Store, batch_id: str) -> Row | None:
    """Created/updated times of a Python-made batch, from its runs."""
    r = t.runs.c
    with store.autocommit.connect() as conn:
        row = (
            conn.execute(
                select(
                    func.count().label("n"),
                    func.min(r.created_at).label("created_at"),
                    func.max(r.updated_at).label("updated_at"),
                ).where(r.batch_id == batch_id)
            )
            .mappings()
            .one()
        )
        return row if row["n"] else None


# ---------------------------------------------------------------------- run pages
def runs_by_ids(
    store: Store, ids: Sequence[str], columns: Sequence[Any] | None = None
) -> list[Row]:
    if not ids:
        return []
    with store.autocommit.connect() as conn:
        q = select(*(columns or t.runs.c)).where(t.runs.c.id.in_(list(ids)))
        return list(conn.execute(q.order_by(t.runs.c.id)).mappings())


def waitpoints_of(store: Store, run_id: str) -> list[Row]:
    w = t.waitpoints.c
    with store.autocommit.connect() as conn:
        return list(
            conn.execute(select(t.waitpoints).where(w.run_id == run_id).order_by(w.id)).mappings()
        )


def logs_after(store: Store, run_id: str, after_id: int, level: str | None = None) -> list[Row]:
    q = select(t.run_logs).where(t.run_logs.c.run_id == run_id, t.run_logs.c.id > after_id)
    if level:
        q = q.where(t.run_logs.c.level == level)
    with store.autocommit.connect() as conn:
        return list(conn.execute(q.order_by(t.run_logs.c.id).limit(1000)).mappings())


# ---------------------------------------------------------------------- aggregates
def task_stats(store: Store, since: datetime) -> dict[str, dict[str, Any]]:
    """Per task over finished runs since ``since``: count, successes, p50/p95 execution ms."""
    r = t.runs.c
    final = [s.value for s in FINAL_STATUSES]
    # the id bound lets the primary key find the window (run ids sort by creation time)
    where = and_(
        r.created_at >= since,
        r.id >= "run_" + timestamp_prefix(int(since.timestamp() * 1000)),
        r.status.in_(final),
    )
    with store.autocommit.connect() as conn:
        if store.is_postgres:
            q = (
                select(
                    r.task_identifier,
                    func.count().label("n"),
                    func.count().filter(r.status == RunStatus.COMPLETED).label("ok"),
                    func.percentile_cont(0.5).within_group(r.execution_ms).label("p50"),
                    func.percentile_cont(0.95).within_group(r.execution_ms).label("p95"),
                )
                .where(where)
                .group_by(r.task_identifier)
            )
            return {row["task_identifier"]: dict(row) for row in conn.execute(q).mappings()}
        out: dict[str, dict[str, Any]] = {}
        rows = conn.execute(select(r.task_identifier, r.status, r.execution_ms).where(where))
        per: dict[str, list[tuple[str, int]]] = {}
        for tid, status, ms in rows:
            per.setdefault(tid, []).append((status, ms or 0))
        for tid, items in per.items():
            times = sorted(ms for _, ms in items)
            out[tid] = {
                "task_identifier": tid,
                "n": len(items),
                "ok": sum(1 for s, _ in items if s == RunStatus.COMPLETED),
                "p50": _pct(times, 0.5),
                "p95": _pct(times, 0.95),
            }
        return out


def _pct(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return 0.0
    k = (len(sorted_values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def runs_by_task_status(store: Store) -> list[Row]:
    """Counts for /metrics. A full GROUP BY: fine up to a few million rows per scrape;
    with more, keep retention on (see the README)."""
    r = t.runs.c
    with store.autocommit.connect() as conn:
        q = select(r.task_identifier, r.status, func.count().label("n")).group_by(
            r.task_identifier, r.status
        )
        return list(conn.execute(q).mappings())


def durations_by_task(store: Store, since: datetime) -> list[Row]:
    r = t.runs.c
    with store.autocommit.connect() as conn:
        q = (
            select(
                r.task_identifier,
                func.count().label("n"),
                func.coalesce(func.sum(r.execution_ms), 0).label("total_ms"),
            )
            .where(r.finished_at >= since)
            .group_by(r.task_identifier)
        )
        return list(conn.execute(q).mappings())


def waiting_for_queue(store: Store) -> dict[str, int]:
    """PENDING_VERSION runs by the undeclared queue their trigger named
    (runtime/pending_queues.py): a small partial index, so cheap on every scrape."""
    r = t.runs.c
    with store.autocommit.connect() as conn:
        q = (
            select(r.pending_queue, func.count())
            .where(r.pending_queue.is_not(None), r.status == RunStatus.PENDING_VERSION)
            .group_by(r.pending_queue)
            .order_by(r.pending_queue)
        )
        return {str(name): int(n) for name, n in conn.execute(q)}


def executing_by_queue(store: Store) -> dict[str, int]:
    r = t.runs.c
    with store.autocommit.connect() as conn:
        q = (
            select(r.queue, func.count())
            .where(r.status.in_([RunStatus.EXECUTING, RunStatus.DEQUEUED]))
            .group_by(r.queue)
        )
        return {q_ or "": n for q_, n in conn.execute(q)}


def slot_groups(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Concurrency groups (queue, key) with runs holding or waiting for a slot, the most
    waiting first (the wake step's own count, runtime/store/slots.py)."""
    q = usage(utcnow()).order_by(text("waiting DESC"), "concurrency_queue", "concurrency_key")
    with store.autocommit.connect() as conn:
        groups = list(conn.execute(q.limit(limit)).mappings())
        held = controls(conn) if groups else {}
    # the limit its runs claim against now: 0 while paused, an override, else their own
    return [
        {**g, "paused": bool((h := held.get(g["concurrency_queue"])) and h["paused"]),
         "concurrency_limit": effective_limit(g, h)}
        for g in groups
    ]


def queue_holds_and_slot_waits(store: Store) -> tuple[list[Row], dict[str, int]]:
    """Ops' holds on queues, and the runs waiting for a slot per queue (a task's own or a
    shared one; the wake step's own count)."""
    waiting: dict[str, int] = {}
    with store.autocommit.connect() as conn:
        holds = list(controls(conn).values())
        for g in conn.execute(usage(utcnow())).mappings():
            if g["waiting"]:
                queue = g["concurrency_queue"]
                waiting[queue] = waiting.get(queue, 0) + int(g["waiting"])
    return holds, waiting


def timer_lag_seconds(store: Store) -> float:
    """How late the timer loop is, seen from outside: the oldest due time (delayed run or
    time waitpoint) that nobody has acted on yet. 0 when nothing is overdue."""
    now = utcnow()
    with store.autocommit.connect() as conn:
        due_run = conn.execute(
            select(func.min(t.runs.c.available_at)).where(
                t.runs.c.status == RunStatus.DELAYED, t.runs.c.available_at <= now
            )
        ).scalar()
        due_wp = conn.execute(
            select(func.min(t.waitpoints.c.due_at)).where(
                t.waitpoints.c.status == "PENDING", t.waitpoints.c.due_at <= now
            )
        ).scalar()
    oldest = min((d for d in (due_run, due_wp) if d is not None), default=None)
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:
        from datetime import UTC

        oldest = oldest.replace(tzinfo=UTC)
    return max(0.0, (now - oldest).total_seconds())


def schedule_fires(store: Store, schedule_ids: Sequence[str], limit: int = 5) -> dict[str, list]:
    """The last fires (and skips) of each schedule, newest first."""
    if not schedule_ids:
        return {}
    f = t.schedule_fires.c
    out: dict[str, list] = {sid: [] for sid in schedule_ids}
    with store.autocommit.connect() as conn:
        rows = conn.execute(
            select(t.schedule_fires)
            .where(f.schedule_id.in_(list(schedule_ids)))
            .order_by(f.fire_time.desc())
            .limit(limit * len(schedule_ids) * 4)
        ).mappings()
        for row in rows:
            if len(out[row["schedule_id"]]) < limit:
                out[row["schedule_id"]].append(dict(row))
    return out


def data_source_rows(store: Store) -> list[Row]:
    """Data sources WITHOUT their credentials column: the page never needs the secret."""
    d = t.data_sources.c
    with store.autocommit.connect() as conn:
        return list(
            conn.execute(
                select(d.id, d.name, d.type, d.created_at, d.updated_at).order_by(d.name)
            ).mappings()
        )


def explain(store: Store, statement: Any) -> list[str]:
    """EXPLAIN ANALYZE lines of a statement (bench)."""
    compiled = statement.compile(store.engine, compile_kwargs={"literal_binds": True})
    with store.autocommit.connect() as conn:
        return [r[0] for r in conn.execute(text(f"EXPLAIN ANALYZE {compiled}"))]


def since(hours: float) -> datetime:
    return utcnow() - timedelta(hours=hours)
