"""``runs``: retrieve, list, cancel, replay (one run or in bulk), poll, reschedule — reads and
commands on runs."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import bulk as _bulk
from . import bulk_actions, secrets
from .bootstrap import get_runtime
from .durations import resolve_time, utcnow
from .errors import InvalidTriggerOptionsError, RunNotFoundError
from .statuses import FAILED_STATUSES, FINAL_STATUSES, RunStatus


@dataclass
class Attempt:
    number: int
    status: str
    worker: str | None
    started_at: datetime
    finished_at: datetime | None
    execution_ms: int | None
    error: Any


@dataclass
class Run:
    id: str
    task_identifier: str
    status: RunStatus
    payload: Any
    output: Any
    error: Any
    attempt_count: int
    tags: list[str]
    metadata: dict[str, Any]
    idempotency_key: str | None
    parent_id: str | None
    root_id: str | None
    batch_id: str | None
    depth: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    queue: str | None
    machine: str | None
    delay_until: datetime | None
    expires_at: datetime | None
    max_attempts: int | None
    max_duration: float | None
    ttl_seconds: float | None
    execution_ms: int
    replayed_from: str | None
    schedule_id: str | None
    waiting_on: str | None
    attempts: list[Attempt] = field(default_factory=list)
    #: its task's concurrency slots it takes ('' when the task is limited but no key given)
    concurrency_key: str | None = None
    #: the queue whose slots those are: its task's id, or a shared queue's name
    concurrency_queue: str | None = None
    #: QUEUED and waiting for one of those slots to free
    waiting_for_slot: bool = False
    #: the key of the debounced trigger that made it (runtime/debounce.py)
    debounce_key: str | None = None
    #: PENDING_VERSION until something declares this queue its trigger named
    #: (runtime/pending_queues.py)
    pending_queue: str | None = None

    @property
    def is_completed(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_success(self) -> bool:
        return self.status == RunStatus.COMPLETED

    @property
    def is_failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def is_cancelled(self) -> bool:
        return self.status == RunStatus.CANCELED

    @property
    def is_executing(self) -> bool:
        return self.status == RunStatus.EXECUTING

    @property
    def is_waiting(self) -> bool:
        return self.status == RunStatus.WAITING

    @property
    def is_queued(self) -> bool:
        return self.status in (RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.PENDING_VERSION)

    @property
    def duration_ms(self) -> int:
        """Execution time (waits excluded)."""
        return self.execution_ms

    @property
    def wall_time_ms(self) -> int | None:
        if self.started_at is None:
            return None
        end = self.finished_at or utcnow()
        return int((end - self.started_at).total_seconds() * 1000)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d.update(
            is_completed=self.is_completed,
            is_success=self.is_success,
            is_failed=self.is_failed,
            wall_time_ms=self.wall_time_ms,
        )
        return d


def from_row(row: Any, attempts: Sequence[Any] = (), *, with_payload: bool = True) -> Run:
    return Run(
        id=row["id"],
        task_identifier=row["task_identifier"],
        status=RunStatus(row["status"]),
        payload=secrets.mask(row["payload"]) if with_payload and "payload" in row else None,
        output=row.get("output", None),
        error=row["error"],
        attempt_count=row["attempt_count"],
        tags=builtins.list(row["tags"] or []),
        metadata=dict(row["metadata"] or {}),
        idempotency_key=row["idempotency_key_user"],
        parent_id=row["parent_id"],
        root_id=row["root_id"],
        batch_id=row["batch_id"],
        depth=row["depth"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        updated_at=row["updated_at"],
        queue=row["queue"],
        machine=row["machine"],
        delay_until=row["delay_until"],
        expires_at=row["expires_at"],
        max_attempts=row["max_attempts"],
        max_duration=row["max_duration"],
        ttl_seconds=row["ttl_seconds"],
        execution_ms=row["execution_ms"],
        replayed_from=row["replayed_from"],
        schedule_id=row["schedule_id"],
        waiting_on=row["waiting_on"],
        concurrency_key=row["concurrency_key"],
        # (runs from before shared queues recorded none: their task's own)
        concurrency_queue=row.get("concurrency_queue") or row["task_identifier"],
        waiting_for_slot=bool(row["waiting_for_slot"]),
        debounce_key=row.get("debounce_key"),
        pending_queue=row.get("pending_queue"),
        attempts=[
            Attempt(
                a["number"],
                a["status"],
                a["worker"],
                a["started_at"],
                a["finished_at"],
                a["execution_ms"],
                a["error"],
            )
            for a in attempts
        ],
    )


def _id(run: Any) -> str:
    return run if isinstance(run, str) else run.id


def retrieve(run_id: Any) -> Run:
    store = get_runtime().store
    row = store.get_run(_id(run_id))
    if row is None:
        raise RunNotFoundError(f"no run with id {_id(run_id)!r}")
    return from_row(row, store.attempts(row["id"], row))


@dataclass
class RunPage:
    data: list[Run]
    next_cursor: str | None

    def __iter__(self) -> Iterator[Run]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def list(  # noqa: A001 - the public name is runs.list, as in Trigger.dev
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
    cursor: str | None = None,
    limit: int = 50,
) -> RunPage:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page.
    ``concurrency_queue``: runs in that queue's slots (a task's id, or a shared queue)."""
    if not 1 <= limit <= 1000:
        raise InvalidTriggerOptionsError("limit must be between 1 and 1000")
    filters = _bulk.filters_of(
        status=status, task=task, tag=tag, created_from=created_from, created_to=created_to,
        period=period, batch=batch, schedule=schedule, idempotency_key=idempotency_key,
        concurrency_queue=concurrency_queue)
    rows = get_runtime().store.list_runs(**filters, cursor=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return RunPage(
        [from_row(r, with_payload=False) for r in rows], rows[-1]["id"] if more and rows else None
    )


def cancel(run_id: Any) -> builtins.list[str]:
    """Cancel a run (and its unfinished children); returns the ids canceled. Canceling a
    finished run changes nothing and returns []."""
    rid = _id(run_id)
    store = get_runtime().store
    if store.get_run(rid) is None:
        raise RunNotFoundError(f"no run with id {rid!r}")
    return store.cancel(rid)


def replay(run_id: Any, *, payload: Any = None, tags: Sequence[str] | None = None,
           idempotency_key: str | None = None) -> Any:
    """A new run of the same task with the same payload (secrets kept encrypted).
    ``idempotency_key``: a second replay with the key returns the first's run (a bulk
    action redoing a page after a crash)."""
    from .trigger import build_row, insert_and_publish, shared_queue_named

    rt = get_runtime()
    row = rt.store.get_run(_id(run_id))
    if row is None:
        raise RunNotFoundError(f"no run with id {_id(run_id)!r}")
    opts: dict[str, Any] = {
        "tags": builtins.list(tags) if tags is not None else builtins.list(row["tags"] or []),
        "max_attempts": row["max_attempts"],
    }
    if row["machine"]:
        opts["machine"] = row["machine"]
    if idempotency_key is not None:
        opts["idempotency_key"] = idempotency_key
    if row["concurrency_key"]:  # the replay takes the same slots as the original
        opts["concurrency_key"] = row["concurrency_key"]
    shared = row["concurrency_queue"]
    if shared and shared != row["task_identifier"] and shared_queue_named(rt, shared):
        opts["queue"] = shared  # ... in the same shared queue, while it is declared
    if row.get("pending_queue"):
        opts["queue"] = row["pending_queue"]  # ... or waits for the same queue as it
    new = build_row(rt, row["task_identifier"], None, opts, None, trigger_function="replay")
    new["payload"] = (
        row["payload"] if payload is None else secrets.encode(payload, rt.encryption_key)
    )
    new["replayed_from"] = row["id"]
    new["queue"] = new["queue"] or row["queue"]
    return insert_and_publish(rt, [new])[0]


def bulk_cancel(run_ids: Sequence[str] | None = None, *,
                max_runs: int = _bulk.DEFAULT_MAX_RUNS, dry_run: bool = False,
                after: str | None = None, **filters: Any) -> _bulk.BulkResult:
    """Cancel every run not yet final that ``filters`` (those of :func:`list`) match — or
    that ``run_ids`` name —, and their unfinished children; at most ``max_runs``, older
    than ``after`` if given (a truncated result's ``next``). ``dry_run``: only count."""
    return _bulk.apply(get_runtime().store, "cancel", _bulk.filters_of(**filters),
                      max_runs=max_runs, dry_run=dry_run, after=after, run_ids=run_ids)


def bulk_replay(run_ids: Sequence[str] | None = None, *,
                max_runs: int = _bulk.DEFAULT_MAX_RUNS, dry_run: bool = False,
                after: str | None = None, **filters: Any) -> _bulk.BulkResult:
    """Replay every run ``filters`` (those of :func:`list`; usually a final ``status``)
    match — or that ``run_ids`` name —, at most ``max_runs``; the result's ``run_ids``
    are the new runs. A truncated result's ``next``, passed as ``after``, goes on with
    the older runs (calling again without it would replay the same runs twice).
    ``dry_run``: only count."""
    return _bulk.apply(get_runtime().store, "replay", _bulk.filters_of(**filters),
                      max_runs=max_runs, dry_run=dry_run, after=after, run_ids=run_ids)


def reschedule(run_id: Any, delay: Any) -> Run:
    when = resolve_time(delay)
    assert when is not None
    if not get_runtime().store.reschedule(_id(run_id), when):
        raise InvalidTriggerOptionsError("only a DELAYED run can be rescheduled")
    return retrieve(run_id)


def poll(run_id: Any, *, poll_interval: float = 1.0, timeout: float | None = None) -> Run:
    """Retrieve until the run is final (or ``timeout`` seconds pass: TimeoutError)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        run = retrieve(run_id)
        if run.is_completed:
            return run
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run.id} still {run.status.value} after {timeout} s")
        time.sleep(poll_interval)


#: what a subscriber sees change (not the lease, which every heartbeat moves)
_WATCHED = ("status", "updated_at", "metadata", "output", "error", "attempt_count", "tags",
            "waiting_on", "waiting_for_slot", "delay_until")


def subscribe_to_run(
    run_id: Any,
    *,
    poll_interval: float = 0.5,
    stop_on_completion: bool = True,
    timeout: float | None = None,
) -> Iterator[Run]:
    """The run now, then again each time it changes (status, metadata, tags, output …),
    until it is final (Trigger.dev's ``runs.subscribeToRun``; read by polling the run row
    every ``poll_interval`` seconds). ``timeout`` seconds without the run ending:
    TimeoutError."""
    store = get_runtime().store
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: tuple[Any, ...] | None = None
    while True:
        row = store.get_run(_id(run_id))
        if row is None:
            raise RunNotFoundError(f"no run with id {_id(run_id)!r}")
        state = tuple(row[name] for name in _WATCHED)
        if state != seen:
            seen = state
            run = from_row(row, store.attempts(row["id"], row))
            yield run
            if stop_on_completion and run.is_completed:
                return
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {_id(run_id)} still {row['status']} after {timeout} s")
        time.sleep(poll_interval)


def logs(run_id: Any, level: str | None = None) -> builtins.list[dict[str, Any]]:
    return [dict(r) for r in get_runtime().store.logs(_id(run_id), level)]


class _Runs:
    retrieve = staticmethod(retrieve)
    list = staticmethod(list)
    cancel = staticmethod(cancel)
    replay = staticmethod(replay)
    bulk_cancel = staticmethod(bulk_cancel)
    bulk_replay = staticmethod(bulk_replay)
    #: Trigger.dev's runs.bulk.*: cancel/replay/retrieve/list/abort/poll in the background
    bulk = bulk_actions
    reschedule = staticmethod(reschedule)
    poll = staticmethod(poll)
    subscribe_to_run = staticmethod(subscribe_to_run)
    logs = staticmethod(logs)


runs = _Runs()
