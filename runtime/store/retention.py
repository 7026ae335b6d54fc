"""Retention: delete finished runs (and what hangs off them) once they are old enough.

Without it the run table only grows (10 M runs a day is ~20 GB a day, k8s/README.md).
A run goes when it finished before the cutoff, and only when nothing still needs it:

- its idempotency key has expired (deleting the run earlier would release the key early);
- its ``on_complete`` hook has been handed to a worker;
- its parent, if any, is final (a waiting parent may still read its children).

Runs are selected by id first: ids begin with the creation time, so "created before the
cutoff" is a primary-key range and the scan never walks the recent (hot) end of the table.
Attempts, logs, steps and tags go with the run (``ON DELETE CASCADE``); its waitpoints are
deleted here. Wait tokens made outside a run, schedule fire records and the HTTP API's
request replays age out on the same pass. Each call deletes at most ``limit`` runs in one
transaction; several timer loops can prune at once (``SKIP LOCKED`` on Postgres).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, or_, select

from ..durations import utcnow
from ..ids import timestamp_prefix
from ..statuses import FINAL_STATUSES
from . import tables as t
from .dashboard import prune_requests
from .repository import Store

_FINAL = sorted(s.value for s in FINAL_STATUSES)
#: the HTTP API replays a retried request's first answer; the SDK retries within seconds
REQUEST_REPLAY_DAYS = 1


def prune_runs(store: Store, finished_before: datetime, now: datetime, limit: int) -> int:
    """Delete up to ``limit`` runs that finished before the cutoff (one transaction)."""
    r, w = t.runs.c, t.waitpoints.c
    parent = t.runs.alias("parent")
    bound = "run_" + timestamp_prefix(int(finished_before.timestamp() * 1000))
    pick = (
        select(r.id)
        .where(
            r.id < bound,
            r.status.in_(_FINAL),
            r.finished_at < finished_before,
            or_(r.idempotency_key.is_(None), r.idempotency_key_expires_at < now),
            r.on_complete_pending.is_(False),
            r.notify_pending.is_(False),  # its run webhooks are not recorded yet
            or_(
                r.parent_id.is_(None),
                ~exists().where(parent.c.id == r.parent_id, parent.c.status.not_in(_FINAL)),
            ),
        )
        .order_by(r.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=t.runs)
    )
    with store.engine.begin() as conn:
        ids = list(conn.execute(pick).scalars())
        if not ids:
            return 0
        conn.execute(delete(t.waitpoints).where(w.run_id.in_(ids)))
        return int(conn.execute(delete(t.runs).where(r.id.in_(ids))).rowcount or 0)


def prune_others(store: Store, finished_before: datetime, now: datetime) -> dict[str, int]:
    """Wait tokens no run waited on, schedule fire records, bulk actions done (completed
    or aborted) and API request replays."""
    w, f, b = t.waitpoints.c, t.schedule_fires.c, t.bulk_actions.c
    with store.engine.begin() as conn:
        tokens = conn.execute(
            delete(t.waitpoints).where(
                w.run_id.is_(None),
                w.status != "PENDING",
                w.completed_at < finished_before,
                or_(w.idempotency_key.is_(None), w.idempotency_key_expires_at < now),
            )
        ).rowcount
        fires = conn.execute(delete(t.schedule_fires).where(f.fire_time < finished_before)).rowcount
        bulks = conn.execute(delete(t.bulk_actions).where(
            b.status != "PENDING", b.completed_at < finished_before)).rowcount
    requests = prune_requests(store, now - timedelta(days=REQUEST_REPLAY_DAYS))
    return {"tokens": int(tokens or 0), "schedule_fires": int(fires or 0),
            "bulk_actions": int(bulks or 0), "api_requests": requests}


def prune_pass(
    store: Store, older_than_s: float, limit: int, max_batches: int | None = None
) -> tuple[int, dict[str, int] | None]:
    """Batches of :func:`prune_runs` for runs finished ``older_than_s`` ago, then, once a
    batch comes back short (nothing older left), :func:`prune_others`. Stops after
    ``max_batches`` if given: the others are then ``None`` and the pass is not done."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than_s)
    deleted, batches = 0, 0
    while max_batches is None or batches < max_batches:
        n = prune_runs(store, cutoff, now, limit)
        deleted, batches = deleted + n, batches + 1
        if n < limit:
            return deleted, prune_others(store, cutoff, now)
    return deleted, None
