"""Ops' hold on a task's queue: pause it, resume it, override its concurrency limit, reset it.

Trigger.dev gives each task its own queue and lets ops pause one ("no new run starts;
executing runs finish") or override its ``concurrencyLimit`` (here also its total over
all concurrency keys) until reset. Here a row of
``queue_controls`` exists while a task's queue is paused or overridden, and the claim reads
it (runtime/store/repository.py ``_claim_sql``): runs of a held task go through the slot
claim (runtime/store/slots.py), which starts none while paused and counts against the
override. A run that cannot start waits for a slot; the timer's wake step starts it once
the queue is resumed or has room, oldest first.

A run of an unlimited task that was already EXECUTING when an override came is stamped with
it here, so it counts against the new limit. A run starting in the very instant the
override commits may not be: it counts as one of those already running.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..durations import utcnow
from ..statuses import RunStatus
from . import tables as t
from .repository import Row, Store

MAX_CONCURRENCY_LIMIT = 100_000  # Trigger.dev's bound for an override


def _control(conn: Connection, task_id: str) -> Row | None:
    c = t.queue_controls.c
    return conn.execute(
        select(t.queue_controls).where(c.task_identifier == task_id).with_for_update()
    ).mappings().first()


def _save(conn: Connection, task_id: str, old: Row | None, values: dict[str, Any]) -> None:
    """Write the control row; delete it once it holds nothing (the ordinary claim checks
    only that a row exists)."""
    c = t.queue_controls.c
    merged = {**(dict(old) if old else {}), **values}
    holds = merged.get("paused") or any(
        merged.get(name) is not None
        for name in ("concurrency_limit", "total_concurrency_limit")
    )
    if old is None and holds:
        conn.execute(insert(t.queue_controls).values(task_identifier=task_id, **values))
    elif old is not None and holds:
        conn.execute(update(t.queue_controls).where(c.task_identifier == task_id).values(**values))
    elif old is not None:
        conn.execute(delete(t.queue_controls).where(c.task_identifier == task_id))


def _hold(store: Store, task_id: str, values: dict[str, Any], *restamp: Any) -> None:
    """Change a task's hold and, in the same transaction, restamp its runs (``restamp``:
    UPDATEs of ``runs``). Two first holds on one task both insert its row: the loser runs
    once more, and updates it."""
    for attempt in (1, 2):
        try:
            with store.engine.begin() as conn:
                _save(conn, task_id, _control(conn, task_id), {**values, "updated_at": utcnow()})
                for stmt in restamp:
                    conn.execute(stmt)
            return
        except IntegrityError:
            if attempt == 2:
                raise


def set_paused(store: Store, task_id: str, paused: bool, by: str) -> None:
    now = utcnow()
    _hold(store, task_id, {
        "paused": paused, "paused_at": now if paused else None, "paused_by": by if paused else None,
    })


def _stamp_executing(task_id: str, limit: int) -> Any:
    """Runs of an unlimited queue already executing count against a new override."""
    r = t.runs.c
    return (
        update(t.runs)
        .where(
            r.concurrency_queue == task_id,
            r.status == RunStatus.EXECUTING,
            r.concurrency_limit.is_(None),
        )
        .values(concurrency_limit=limit, concurrency_key=func.coalesce(r.concurrency_key, ""))
    )


def override_limit(store: Store, task_id: str, limit: int, by: str) -> None:
    _hold(store, task_id,
          {"concurrency_limit": limit, "overridden_at": utcnow(), "overridden_by": by},
          _stamp_executing(task_id, limit))


def override_total(store: Store, task_id: str, total: int, by: str) -> None:
    """Cap all the task's keys together at ``total`` until reset. Each run keeps its
    per-key limit (an unlimited task's runs take the total as theirs, which is the same)."""
    _hold(store, task_id,
          {"total_concurrency_limit": total, "overridden_at": utcnow(), "overridden_by": by},
          _stamp_executing(task_id, total))


def reset_limit(store: Store, task_id: str, base: int | None) -> None:
    """Back to the limit in the task's code (``base``; None: unlimited). Runs stamped with
    the override while queued or executing take the base again."""
    r = t.runs.c
    unstamp = (
        update(t.runs)
        .where(
            r.concurrency_queue == task_id,
            r.concurrency_limit.is_not(None),
            r.status.in_([RunStatus.QUEUED, RunStatus.EXECUTING]),
        )
        .values(concurrency_limit=base)
    )
    _hold(store, task_id, {"concurrency_limit": None, "total_concurrency_limit": None,
                           "overridden_at": None, "overridden_by": None}, unstamp)


def describe(store: Store, task_ids: list[str]) -> list[dict[str, Any]]:
    """Each queue's live counts and hold: running (EXECUTING), queued (QUEUED: due,
    backing off or waiting for a slot), paused, and its limit's base and override. A name
    is a task's own queue or a shared queue (its tasks' definitions give its base)."""
    r, c = t.runs.c, t.queue_controls.c
    with store.autocommit.connect() as conn:
        counts = {
            (task_id, status): int(n)
            for task_id, status, n in conn.execute(
                select(r.concurrency_queue, r.status, func.count())
                .where(r.status.in_([RunStatus.EXECUTING, RunStatus.QUEUED]),
                       r.concurrency_queue.in_(task_ids))
                .group_by(r.concurrency_queue, r.status)
            )
        }
        held = {
            row["task_identifier"]: row
            for row in conn.execute(
                select(t.queue_controls).where(c.task_identifier.in_(task_ids))
            ).mappings()
        }
        td, qd = t.task_definitions.c, t.queue_definitions.c
        # a shared queue's limits as its workers declared them ...
        bases: dict[str, tuple[Any, Any]] = {
            name: (limit or total, total) for name, limit, total in conn.execute(
                select(qd.name, qd.concurrency_limit, qd.total_concurrency_limit)
                .where(qd.name.in_(task_ids)))
        }
        # ... else as its tasks' definitions carry it; a task's own queue: its definition's
        for name, limit, total in conn.execute(
            select(func.coalesce(td.concurrency_queue, td.id), td.concurrency_limit,
                   td.total_concurrency_limit)
            .where(or_(td.id.in_(task_ids), td.concurrency_queue.in_(task_ids)))
        ):
            if name in task_ids:
                bases.setdefault(name, (limit, total))
    out = []
    for task_id in task_ids:
        h = held.get(task_id)
        out.append({
            "name": task_id,
            "running": counts.get((task_id, RunStatus.EXECUTING), 0),
            "queued": counts.get((task_id, RunStatus.QUEUED), 0),
            "paused": bool(h and h["paused"]),
            "paused_at": h["paused_at"] if h else None,
            "paused_by": h["paused_by"] if h else None,
            "defined": task_id in bases,  # synced by a worker
            "base": bases.get(task_id, (None, None))[0],
            "total": bases.get(task_id, (None, None))[1],
            "override": h["concurrency_limit"] if h else None,
            "total_override": h["total_concurrency_limit"] if h else None,
            "overridden_at": h["overridden_at"] if h else None,
            "overridden_by": h["overridden_by"] if h else None,
        })
    return out


def held(store: Store, task_id: str) -> Row | None:
    """The hold on one task's queue, or None."""
    with store.autocommit.connect() as conn:
        return conn.execute(
            select(t.queue_controls).where(t.queue_controls.c.task_identifier == task_id)
        ).mappings().first()
