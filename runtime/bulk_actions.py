"""Bulk actions in the background: ``runs.bulk.cancel/replay/retrieve/list/abort/poll``, as
Trigger.dev v4's asynchronous ``runs.bulk.*``.

    action = runs.bulk.replay(task="introspect-data", status="FAILED", period="1d")
    runs.bulk.retrieve(action.id)   # status PENDING → COMPLETED, success / failure counts
    runs.bulk.abort(action.id)      # stops after the page in hand: status ABORTED

``runs.bulk_cancel/bulk_replay`` (runtime/bulk.py) act in the caller and stop at
``max_runs``; a bulk action is a row (``bulk_actions``) that a thread beside each timer
loop (workers, scheduler: :class:`Runner`) works through, ``BUSTER_BULK_ACTION_PAGE_SIZE``
runs a page, however many runs match. It walks the runs as ``runs.bulk_*`` does — newest
first, only those that existed when the walk passed them — and records where it is after
each page. A process killed mid-page leaves the action to another once its lease lapses,
which redoes that page: a cancel has nothing left to do for the runs already canceled, and
each replay carries the idempotency key ``<action id>:<original run id>``, so a page done
twice replays no run twice. As in Trigger.dev, a filter with no time bound means the last
7 days, and an action needs a filter or run ids (an empty filter is refused rather than
meaning every run).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select, update

from . import bulk, ids
from .bootstrap import get_runtime
from .durations import utcnow
from .errors import BusterError, InvalidTriggerOptionsError
from .polling import PollingThread
from .store import tables as t

#: a filter with no time bound covers this far back (Trigger.dev's default)
DEFAULT_WINDOW = timedelta(days=7)
#: a process owns the action while it does a page, up to this long
_LEASE = timedelta(seconds=120)
_TIMES = ("created_from", "created_to")


class BulkActionNotFoundError(BusterError, LookupError):
    """No bulk action has that id."""


@dataclass(frozen=True)
class BulkAction:
    id: str
    action: str
    name: str | None
    #: PENDING (being worked through), COMPLETED, ABORTED
    status: str
    #: runs canceled or replayed so far
    success: int
    #: runs named or matched that were gone by the time the action reached them
    failure: int
    filters: dict[str, Any] | None
    run_ids: builtins.list[str] | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @property
    def is_done(self) -> bool:
        return self.status != "PENDING"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "name": self.name,
                "status": self.status, "success": self.success, "failure": self.failure,
                "filters": self.filters, "run_ids": self.run_ids,
                "created_by": self.created_by, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "completed_at": self.completed_at.isoformat() if self.completed_at else None}


def _from_row(row: Any) -> BulkAction:
    return BulkAction(id=row["id"], action=row["action"], name=row["name"],
                      status=row["status"], success=row["success"], failure=row["failure"],
                      filters=row["filters"], run_ids=row["run_ids"],
                      created_by=row["created_by"], created_at=row["created_at"],
                      updated_at=row["updated_at"], completed_at=row["completed_at"])


def _stored_filters(filters: Mapping[str, Any]) -> dict[str, Any]:
    """``bulk.filters_of``'s result as JSON (times as ISO text), without the empty ones."""
    out = {k: v for k, v in filters.items() if v not in (None, [], "")}
    for k in _TIMES:
        if isinstance(out.get(k), datetime):
            out[k] = out[k].isoformat()
    return out


def _store_filters(stored: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(stored)
    for k in _TIMES:
        if isinstance(out.get(k), str):
            out[k] = datetime.fromisoformat(out[k])
    return out


def _create(action: str, run_ids: Sequence[str] | None, name: str | None, by: str | None,
            filters: dict[str, Any]) -> BulkAction:
    if run_ids is not None and any(filters.values()):
        raise InvalidTriggerOptionsError("give run_ids or filters, not both")
    return start(action, None if run_ids is not None else bulk.filters_of(**filters),
                 run_ids, name=name, by=by)


def start(action: str, store_filters: Mapping[str, Any] | None,
          run_ids: Sequence[str] | None = None, *, name: str | None = None,
          by: str | None = None) -> BulkAction:
    """A bulk action on what ``store_filters`` (``Store.list_runs`` keywords, as
    ``bulk.filters_of`` makes them) match, or on ``run_ids``: :func:`cancel` and
    :func:`replay`, and the dashboard's Runs page, whose filters come in that form."""
    if action not in ("cancel", "replay"):
        raise InvalidTriggerOptionsError(f"unknown bulk action {action!r}")
    if run_ids is not None:
        if isinstance(run_ids, str) or not all(isinstance(i, str) for i in run_ids):
            raise InvalidTriggerOptionsError("run_ids must be a list of run ids")
        stored_ids: builtins.list[str] | None = builtins.list(dict.fromkeys(run_ids))
        stored: dict[str, Any] | None = None
    else:
        stored = _stored_filters(store_filters or {})
        if not stored:
            raise InvalidTriggerOptionsError(
                "a bulk action needs a filter (status, task, tag, period, …) or run ids")
        if not any(k in stored for k in _TIMES):
            stored["created_from"] = (utcnow() - DEFAULT_WINDOW).isoformat()
        stored_ids = None
    if name is not None and (not isinstance(name, str) or len(name) > 256):
        raise InvalidTriggerOptionsError("name must be text of at most 256 characters")
    now = utcnow()
    action_id = ids.new_id("bulk")
    row = {"id": action_id, "action": action, "name": name, "filters": stored,
           "run_ids": stored_ids, "status": "PENDING", "position": 0, "success": 0,
           "failure": 0, "created_by": by, "created_at": now, "updated_at": now}
    store = get_runtime().store
    with store.engine.begin() as conn:
        conn.execute(t.bulk_actions.insert().values(**row))
    return retrieve(action_id)


def cancel(run_ids: Sequence[str] | None = None, *, name: str | None = None,
           by: str | None = None, **filters: Any) -> BulkAction:
    """Cancel, in the background, every run not yet final that ``filters`` (those of
    ``runs.list``) match — or that ``run_ids`` name —, and their unfinished children."""
    return _create("cancel", run_ids, name, by, filters)


def replay(run_ids: Sequence[str] | None = None, *, name: str | None = None,
           by: str | None = None, **filters: Any) -> BulkAction:
    """Replay, in the background, every run ``filters`` match (usually a final status) —
    or that ``run_ids`` name —, each once."""
    return _create("replay", run_ids, name, by, filters)


def retrieve(action_id: str) -> BulkAction:
    store = get_runtime().store
    with store.engine.connect() as conn:
        row = conn.execute(select(t.bulk_actions)
                           .where(t.bulk_actions.c.id == action_id)).mappings().first()
    if row is None:
        raise BulkActionNotFoundError(f"no bulk action with id {action_id!r}")
    return _from_row(row)


def list(limit: int = 50) -> builtins.list[BulkAction]:  # noqa: A001 - runs.bulk.list
    """The newest bulk actions first."""
    store = get_runtime().store
    b = t.bulk_actions.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.bulk_actions)
                            .order_by(b.created_at.desc(), b.id.desc())
                            .limit(limit)).mappings().all()
    return [_from_row(r) for r in rows]


def abort(action_id: str) -> BulkAction:
    """Stop a PENDING action: the page in hand finishes, no other starts. An action already
    done stays as it is."""
    store = get_runtime().store
    b = t.bulk_actions.c
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(update(t.bulk_actions)
                     .where(b.id == action_id, b.status == "PENDING")
                     .values(status="ABORTED", updated_at=now, completed_at=now))
    return retrieve(action_id)


def poll(action_id: str, *, poll_interval: float = 1.0,
         timeout: float | None = None) -> BulkAction:
    """Wait until the action is done (COMPLETED or ABORTED); ``timeout``: TimeoutError."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        action = retrieve(action_id)
        if action.is_done:
            return action
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"bulk action {action_id} still PENDING after {timeout} s")
        time.sleep(poll_interval)


def _take(store: Any) -> Mapping[str, Any] | None:
    """The oldest PENDING action nobody is working on, leased to the caller."""
    b = t.bulk_actions.c
    now = utcnow()
    with store.autocommit.connect() as conn:  # idle: one read, no write transaction
        if conn.execute(select(b.id).where(b.status == "PENDING").limit(1)).first() is None:
            return None
    with store.engine.begin() as conn:
        row = conn.execute(
            select(t.bulk_actions)
            .where(b.status == "PENDING", (b.lease_until.is_(None)) | (b.lease_until < now))
            .order_by(b.created_at).limit(1).with_for_update(skip_locked=True)
        ).mappings().first()
        if row is None:
            return None
        conn.execute(update(t.bulk_actions).where(b.id == row["id"])
                     .values(lease_until=now + _LEASE))
    return row


def work(store: Any, page: int) -> int | None:
    """One page (at most ``page`` runs) of the oldest PENDING action: the runs acted on,
    or None when no action is left to work on."""
    row = _take(store)
    if row is None:
        return None
    b = t.bulk_actions.c
    if row["run_ids"] is not None:
        chunk = row["run_ids"][row["position"]:row["position"] + page]
        result = bulk.apply(store, row["action"], {}, run_ids=chunk, max_runs=len(chunk),
                            replay_key=row["id"]) if chunk else None
        done = row["position"] + len(chunk) >= len(row["run_ids"])
        moved = {"position": row["position"] + len(chunk)}
    else:
        result = bulk.apply(store, row["action"], _store_filters(row["filters"]),
                            max_runs=page, after=row["cursor"], replay_key=row["id"])
        done = not result.truncated
        moved = {"cursor": result.next} if result.truncated else {}
    count = result.count if result is not None else 0
    failed = len(result.not_found) if result is not None else 0
    now = utcnow()
    still = b.status == "PENDING"  # not aborted meanwhile
    values: dict[str, Any] = {"success": b.success + count, "failure": b.failure + failed,
                              "lease_until": None, "updated_at": now, **moved}
    if done:
        values.update(status=case((still, "COMPLETED"), else_=b.status),
                      completed_at=case((still, now), else_=b.completed_at))
    with store.engine.begin() as conn:
        conn.execute(update(t.bulk_actions).where(b.id == row["id"]).values(values))
    return count


class Runner(PollingThread):
    """The thread that works through bulk actions beside a timer loop: a page of replays
    takes a while, and must not hold up the loop's delays, waits and leases."""

    thread_name = "buster-bulk-actions"
    error_message = "bulk action page failed"
    error_action = "bulk_action_error"

    def __init__(self, runtime: Any, page: int, interval_s: float = 1.0):
        super().__init__(interval_s)
        self.runtime, self.page = runtime, page

    def step(self) -> bool:
        # after a page more may be due: go on at once
        return work(self.runtime.store, self.page) is not None
