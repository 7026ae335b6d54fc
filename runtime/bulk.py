"""Bulk cancel and replay: every run a filter matches, as ops need after an incident.

    runs.bulk_cancel(task="introspect-data", status="QUEUED")         # a stuck backlog
    runs.bulk_replay(task="introspect-data", status="FAILED", period="1h")  # after an outage
    runs.bulk_cancel(tag="org:7", dry_run=True).count                 # how many, first
    runs.bulk_replay(["run_…", "run_…"])                              # or the runs named

The filters are those of ``runs.list``. The runs are walked newest first, a page at a time
(a million-run filter never loads at once), and only those that existed when the walk
passed them are touched: a replay's new run is newer than the walk, so it is never replayed
again. ``max_runs`` bounds one call (10,000 by default, as the dashboard's bulk actions);
``truncated`` says more matched, and ``next`` is where the walk stopped: pass it back as
``after`` to go on with the older runs. Calling again without it would start over from the
newest: right for a cancel (what was canceled no longer matches), wrong for a replay (it
would replay the same runs twice). The dashboard's "Cancel all matching" / "Replay all
matching", ``buster-jobs runs cancel|replay --status … --yes`` and ``POST
/api/v1/runs/bulk`` are this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select

from .durations import parse_duration, utcnow
from .errors import InvalidTriggerOptionsError, RunNotFoundError
from .statuses import CANCELABLE_STATUSES, RunStatus
from .store import tables as t

BulkAction = Literal["cancel", "replay"]
DEFAULT_MAX_RUNS = 10_000
_PAGE = 500
_CANCELABLE = frozenset(s.value for s in CANCELABLE_STATUSES)


@dataclass
class BulkResult:
    action: BulkAction
    #: runs canceled or replayed (with ``dry_run``: that would be)
    count: int = 0
    #: the runs canceled (their canceled children too), or the replays' new runs; empty
    #: for a dry run
    run_ids: list[str] = field(default_factory=list)
    #: more runs matched than ``max_runs``
    truncated: bool = False
    dry_run: bool = False
    #: when truncated: the last run walked; ``after=next`` goes on with the older ones
    next: str | None = None
    #: with ``run_ids``: the ids no run has (never created, or deleted by retention)
    not_found: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "count": self.count, "run_ids": self.run_ids,
                "truncated": self.truncated, "dry_run": self.dry_run, "next": self.next,
                "not_found": self.not_found}


def apply(store: Any, action: BulkAction, filters: Mapping[str, Any], *,
          max_runs: int = DEFAULT_MAX_RUNS, dry_run: bool = False,
          after: str | None = None, run_ids: Sequence[str] | None = None,
          replay_key: str | None = None) -> BulkResult:
    """``action`` on every run ``filters`` (``Store.list_runs`` keywords) match, newest
    first, at most ``max_runs``, starting below ``after`` (a truncated result's ``next``) —
    or on the runs ``run_ids`` name (instead of filters; at most ``max_runs``). Cancel
    looks only at runs not yet final (a final one has nothing to cancel); replay at every
    run matched, so filter by status. ``replay_key``: each replay's idempotency key is it
    and the original's id, so doing the same runs again replays none twice."""
    if action not in ("cancel", "replay"):
        raise InvalidTriggerOptionsError(f"unknown bulk action {action!r}")
    if max_runs < 1:
        raise InvalidTriggerOptionsError("max_runs must be at least 1")
    if run_ids is not None:
        if any(v for v in filters.values()) or after is not None:
            raise InvalidTriggerOptionsError(
                "give run_ids or filters (with after), not both")
        return _apply_to_ids(store, action, run_ids, max_runs, dry_run, replay_key)
    query = dict(filters)
    if action == "cancel":
        wanted = [s for s in (query.get("statuses") or sorted(_CANCELABLE)) if s in _CANCELABLE]
        if not wanted:
            return BulkResult(action, dry_run=dry_run)
        query["statuses"] = wanted
    if after is not None and not (isinstance(after, str) and after.startswith("run_")):
        raise InvalidTriggerOptionsError(f"after must be a run id, not {after!r}")
    result = BulkResult(action, dry_run=dry_run)
    cursor, walked = after, after
    while True:
        rows = store.list_runs(**query, cursor=cursor, limit=_PAGE + 1,
                               columns=[t.runs.c.id])
        for row in rows[:_PAGE]:
            if result.count >= max_runs:
                result.truncated, result.next = True, walked
                return result
            walked = row["id"]
            _act(store, action, row["id"], result, replay_key)
        if len(rows) <= _PAGE:
            return result
        cursor = rows[_PAGE - 1]["id"]


def _apply_to_ids(store: Any, action: BulkAction, run_ids: Sequence[str], max_runs: int,
                  dry_run: bool, replay_key: str | None = None) -> BulkResult:
    """``action`` on the runs named, each once, in the order given."""
    if isinstance(run_ids, str) or not all(isinstance(i, str) for i in run_ids):
        raise InvalidTriggerOptionsError("run_ids must be a list of run ids")
    ids = list(dict.fromkeys(run_ids))
    if len(ids) > max_runs:
        raise InvalidTriggerOptionsError(
            f"{len(ids)} run ids: at most max_runs ({max_runs}) in one call")
    r = t.runs.c
    with store.engine.connect() as conn:
        status = {row[0]: row[1] for row in conn.execute(
            select(r.id, r.status).where(r.id.in_(ids)))} if ids else {}
    result = BulkResult(action, dry_run=dry_run,
                        not_found=[i for i in ids if i not in status])
    for run_id in (i for i in ids if i in status):
        if action == "cancel" and status[run_id] not in _CANCELABLE:
            continue  # final: nothing to cancel
        if not _act(store, action, run_id, result, replay_key):
            result.not_found.append(run_id)
    return result


def _act(store: Any, action: BulkAction, run_id: str, result: BulkResult,
         replay_key: str | None = None) -> bool:
    """Cancel or replay one run (with ``result.dry_run``: count it), into ``result``.
    False if the run is gone: deleted (retention) since it was read."""
    from . import runs  # runs imports this module

    if result.dry_run:
        result.count += 1
    elif action == "cancel":
        canceled = store.cancel(run_id)
        if canceled:  # [] when it ended meanwhile
            result.count += 1
            result.run_ids += canceled
    else:
        try:
            key = f"{replay_key}:{run_id}" if replay_key is not None else None
            result.run_ids.append(runs.replay(run_id, idempotency_key=key).id)
        except RunNotFoundError:
            return False
        result.count += 1
    return True


def filters_of(
    *,
    status: str | Sequence[str] | None = None,
    task: str | Sequence[str] | None = None,
    tag: str | Sequence[str] | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    period: str | None = None,
    batch: str | None = None,
    schedule: str | None = None,
    idempotency_key: str | None = None,
    concurrency_queue: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """``runs.list``'s keyword filters as ``Store.list_runs`` takes them (checked)."""
    def as_list(v: str | Sequence[str] | None) -> list[str] | None:
        return [v] if isinstance(v, str) else (list(v) if v else None)

    statuses = as_list(status)
    for s in statuses or []:
        if s not in RunStatus.__members__:
            raise InvalidTriggerOptionsError(f"unknown status {s!r}")
    if period:
        created_from = utcnow() - timedelta(seconds=parse_duration(period) or 0)
    return {
        "statuses": statuses, "tasks": as_list(task), "tags": as_list(tag),
        "created_from": created_from, "created_to": created_to, "batch_id": batch,
        "schedule_id": schedule, "idempotency_key": idempotency_key,
        "queues": as_list(concurrency_queue),
    }
