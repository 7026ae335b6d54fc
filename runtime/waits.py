"""Durable waits: a run that waits longer than a few seconds suspends and replays.

A long wait, ``trigger_and_wait``, a batch wait or a token wait records a waitpoint and a
replay record, then raises ``Suspend``: the attempt ends WAITING and its worker thread is
free. When the waitpoint completes the run is queued again and the task function runs from
the top; each durable call it reaches returns its recorded result at once, matched by call
position. A replay that reaches a different call than the record fails the run with
``NonDeterminismError`` rather than mixing results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from . import ids, secrets
from .bootstrap import get_runtime
from .context import RunContext, current
from .durations import parse_duration, resolve_time, utcnow
from .engine_json import check_json_size
from .errors import NonDeterminismError, NotInRunError, Suspend, TokenNotFoundError
from .result import Result
from .statuses import RunStatus
from .store.repository import create_child_wait
from .task import Task, get_task

T = TypeVar("T")


def _require_run(what: str) -> RunContext:
    rc = current()
    if rc is None:
        raise NotInRunError(f"{what} can only be called inside a running task")
    return rc


def _steps(rc: RunContext) -> list[Any]:
    """The run's replay record, read once per execution."""
    if rc.steps is None:
        rc.steps = list(rc.executor.store.steps(rc.run_id))
    return rc.steps


def _record(rc: RunContext, kind: str, name: str) -> Any:
    """The replay record at this call's position, or None on first execution. Raises when
    the record shows a different call: the task code is not deterministic."""
    steps = _steps(rc)
    seq = rc.seq
    rc.seq += 1
    if seq < len(steps):
        rec = steps[seq]
        if rec["kind"] != kind or rec["name"] != name:
            raise NonDeterminismError(
                f"replay of run {rc.run_id} diverged at call #{seq}: the record has "
                f"{rec['kind']} {rec['name']!r} but the code now calls {kind} {name!r}; "
                "code before a wait must make the same durable calls in the same order"
            )
        return rec
    return None


def _step_row(rc: RunContext, kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "run_id": rc.run_id,
        "seq": rc.seq - 1,
        "kind": kind,
        "name": name,
        "created_at": utcnow(),
        **extra,
    }


#: replay record kinds -> the wait types of Trigger.dev's onWait/onResume
_WAIT_TYPES = {"wait": "duration", "child": "task", "batch": "batch", "token": "token"}


def _wait_info(kind: str, name: str) -> dict[str, Any]:
    """How ``on_wait``/``on_resume`` hooks see a wait: its type, and the call (``wait.for``,
    ``wait.until``, ``wait.for_token``) or the child task's id."""
    return {"type": _WAIT_TYPES.get(kind, kind), "name": name}


def last_wait(rc: RunContext) -> dict[str, Any] | None:
    """The latest durable wait in the run's replay record (loading the record, which the
    replay then uses), or None before the first."""
    for rec in reversed(_steps(rc)):
        if rec["kind"] in _WAIT_TYPES and rec.get("waitpoint_id"):
            return {"waitpoint_id": rec["waitpoint_id"], **_wait_info(rec["kind"], rec["name"])}
    return None


def replaying(rc: RunContext) -> bool:
    """True while an execution re-runs code an earlier one ran (a resume, or a retry
    replaying what earlier attempts recorded): it has not yet passed the last durable
    call recorded."""
    if not rc.resumed and rc.attempt == 1:
        return False  # the run's first execution: nothing is recorded yet
    return rc.seq < len(_steps(rc))


def _remember(rc: RunContext, row: dict[str, Any]) -> None:
    assert rc.steps is not None
    rc.steps.append(row)


# ----------------------------------------------------------------------- time waits
def _sleep_in_place(rc: RunContext | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if rc is not None:
            rc.check_interrupts()
        time.sleep(min(left, 0.05))


def _wait_until(rc: RunContext, name: str, due: datetime) -> None:
    rc.enter_wait()
    try:
        rec = _record(rc, "wait", name)
        store = rc.executor.store
        if rec is None:
            wp_id = ids.new_id("waitpoint")
            row = _step_row(rc, "wait", name, waitpoint_id=wp_id)
            with store.begin() as conn:
                store.create_waitpoint(
                    {
                        "id": wp_id,
                        "kind": "DATETIME",
                        "status": "PENDING",
                        "run_id": rc.run_id,
                        "due_at": due,
                        "created_at": utcnow(),
                    },
                    conn=conn,
                )
                store.record_step(row, conn=conn)
            _remember(rc, row)
            raise Suspend(wp_id, _wait_info("wait", name))
        wp = store.get_waitpoint(rec["waitpoint_id"])
        if wp is None or wp["status"] == "PENDING":
            raise Suspend(rec["waitpoint_id"], _wait_info("wait", name))
    finally:
        rc.exit_wait()


def for_(
    *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0, weeks: float = 0
) -> None:
    """Pause the run. Up to ``inline_wait_threshold_seconds`` (5 s) it sleeps in place;
    longer, the run suspends (WAITING, no worker held) and resumes by replay."""
    total = seconds + 60 * minutes + 3600 * hours + 86400 * days + 604800 * weeks
    if total < 0:
        raise ValueError("wait duration must not be negative")
    rc = current()
    if rc is None or total <= rc.executor.settings.inline_wait_threshold_seconds:
        if rc is not None:
            rc.enter_wait()
        try:
            _sleep_in_place(rc, total)
        finally:
            if rc is not None:
                rc.exit_wait()
        return
    # the due time is fixed by the first execution; replays read it from the record
    _wait_until(rc, "wait.for", utcnow() + timedelta(seconds=total))


def until(*, date: datetime | str, throw_if_in_the_past: bool = False) -> None:
    when = resolve_time(date)
    assert when is not None
    rc = current()
    left = (when - utcnow()).total_seconds()
    if left <= 0:
        if throw_if_in_the_past:
            raise ValueError(f"wait.until date {when.isoformat()} is in the past")
        return
    if rc is None or left <= rc.executor.settings.inline_wait_threshold_seconds:
        _sleep_in_place(rc, left)
        return
    _wait_until(rc, "wait.until", when)


# ----------------------------------------------------------------------- child runs
def _child_rows(
    rc: RunContext,
    items: Sequence[tuple[Task[Any] | str, Any, dict]],
    wp_id: str,
    batch_id: str | None,
    function: str,
) -> list[dict[str, Any]]:
    from .trigger import build_row

    rt = get_runtime()
    rows, now = [], utcnow()
    for task, payload, opts in items:
        task_obj = task if isinstance(task, Task) else None
        task_id = task.id if isinstance(task, Task) else task
        row = build_row(
            rt,
            task_id,
            payload,
            opts,
            task_obj,
            batch_id=batch_id,
            trigger_function=function,
            now=now,
        )
        row["parent_waitpoint_id"] = wp_id
        row["resume_parent_on_completion"] = True
        rows.append(row)
    return rows


def _to_result(task: Task[Any] | str, row: Any) -> Result[Any]:
    task_obj = task if isinstance(task, Task) else get_task(task)
    ok = row["status"] == RunStatus.COMPLETED
    output = row["output"]
    if ok and task_obj is not None:
        output = task_obj.parse_output(output)
    return Result(
        ok=ok,
        id=row["id"],
        output=output if ok else None,
        error=None if ok else row["error"],
        task_identifier=row["task_identifier"],
        status=row["status"],
    )


def _wait_children(
    rc: RunContext, items: Sequence[tuple[Task[Any] | str, Any, dict]], kind: str
) -> list[Result[Any]]:
    """Trigger ``items`` (task, payload, options) as children and suspend until all are
    final. The replay record names the child task, or the tasks of a mixed batch."""
    task_id = ",".join(dict.fromkeys(
        task.id if isinstance(task, Task) else task for task, _, _ in items))
    rc.enter_wait()
    try:
        rec = _record(rc, kind, task_id)
        store = rc.executor.store
        if rec is None:
            wp_id = ids.new_id("waitpoint")
            batch_id = ids.new_id("batch") if kind == "batch" else None
            rows = _child_rows(
                rc,
                items,
                wp_id,
                batch_id,
                "batch_trigger_and_wait" if kind == "batch" else "trigger_and_wait",
            )
            step = _step_row(rc, kind, task_id, waitpoint_id=wp_id)
            wp = {
                "id": wp_id,
                "kind": "BATCH" if kind == "batch" else "RUN",
                "status": "PENDING",
                "run_id": rc.run_id,
                "total": len(rows),
                "created_at": utcnow(),
            }
            child_ids, fresh = create_child_wait(store, wp, step, rows)
            rt = get_runtime()
            by_id = {r["id"]: r for r in rows}
            to_pub = [
                (i, by_id[i]["queue"]) for i in fresh if by_id[i]["status"] == RunStatus.QUEUED
            ]
            if to_pub and rt.can_publish:
                store.mark_published(rt.publisher.publish(to_pub))
            _remember(rc, {**step, "child_ids": child_ids})
            rec = rc.steps[-1] if rc.steps else None
        wp_row = store.get_waitpoint(rec["waitpoint_id"])
        if wp_row is None or wp_row["status"] == "PENDING":
            raise Suspend(rec["waitpoint_id"], _wait_info(kind, task_id))
        children = store.get_runs(rec["child_ids"])
        if len(rec["child_ids"]) != len(items):
            raise NonDeterminismError(
                f"replay of run {rc.run_id} diverged: the recorded batch has "
                f"{len(rec['child_ids'])} children, the code now triggers {len(items)}"
            )
        return [_to_result(task, children[i])
                for (task, _, _), i in zip(items, rec["child_ids"], strict=True)]
    finally:
        rc.exit_wait()


def trigger_and_wait(task: Task[Any] | str, payload: Any = None, **options: Any) -> Result[Any]:
    """Trigger a child run and suspend until it is final; returns its ``Result``."""
    rc = _require_run("trigger_and_wait")
    rc.check_interrupts()
    return _wait_children(rc, [(task, payload, options)], "child")[0]


def batch_trigger_and_wait(
    task: Task[Any] | str, items: list[Any], **options: Any
) -> list[Result[Any]]:
    """Trigger children and suspend until all are final; results in item order."""
    from .trigger import _item

    rc = _require_run("batch_trigger_and_wait")
    rc.check_interrupts()
    settings = rc.executor.settings
    if not items or len(items) > settings.max_batch_size:
        from .errors import InvalidTriggerOptionsError

        raise InvalidTriggerOptionsError(
            f"a batch holds 1–{settings.max_batch_size} items, got {len(items)}"
        )
    entries = []
    for item in items:
        payload, opts = _item(item)
        entries.append((task, payload, {**options, **opts}))
    return wait_batch(rc, entries)


def wait_batch(rc: RunContext,
               entries: Sequence[tuple[Task[Any] | str, Any, dict]]) -> list[Result[Any]]:
    """A batch of children, of one task or several, waited for with one suspension."""
    settings = rc.executor.settings
    if not entries or len(entries) > settings.max_batch_size:
        from .errors import InvalidTriggerOptionsError

        raise InvalidTriggerOptionsError(
            f"a batch holds 1–{settings.max_batch_size} items, got {len(entries)}"
        )
    return _wait_children(rc, entries, "batch")


# ----------------------------------------------------------------------- tokens
@dataclass
class WaitToken:
    id: str
    is_cached: bool
    timeout_at: datetime | None
    status: str = "WAITING"


@dataclass
class TokenCompletion:
    success: bool
    already_completed: bool
    status: str


def create_token(
    *,
    timeout: Any = None,
    idempotency_key: str | None = None,
    idempotency_key_ttl: Any = None,
    tags: Sequence[str] | None = None,
) -> WaitToken:
    """A token a run can wait on until some other process completes it (or it times out).
    Inside a run the token is part of the replay record: replay gets the same token."""
    rc = current()
    if rc is not None:
        rc.check_interrupts()
        rec = _record(rc, "token.create", "wait.create_token")
        if rec is not None:
            wp = rc.executor.store.get_waitpoint(rec["waitpoint_id"])
            return WaitToken(rec["waitpoint_id"], True, wp["due_at"] if wp else None)
    seconds = (
        parse_duration(timeout)
        if timeout is not None and not isinstance(timeout, datetime)
        else None
    )
    due = (
        timeout
        if isinstance(timeout, datetime)
        else (utcnow() + timedelta(seconds=seconds) if seconds is not None else None)
    )
    key_ttl = parse_duration(idempotency_key_ttl)
    store = get_runtime().store
    row = {
        "id": ids.new_id("waitpoint"),
        "kind": "MANUAL",
        "status": "PENDING",
        "due_at": due,
        "tags": list(tags or []),
        "created_at": utcnow(),
        "idempotency_key": idempotency_key,
        "idempotency_key_expires_at": utcnow() + timedelta(seconds=key_ttl)
        if idempotency_key and key_ttl
        else None,
    }
    got, cached = store.create_token(row)
    if rc is not None:
        step = _step_row(rc, "token.create", "wait.create_token", waitpoint_id=got["id"])
        store.record_step(step)
        _remember(rc, step)
    return WaitToken(got["id"], cached, got["due_at"], _token_status(got["status"]))


def _token_status(status: str) -> str:
    return {"PENDING": "WAITING"}.get(status, status)


def for_token(token: WaitToken | str) -> Result[Any]:
    """Suspend until the token is completed (ok, with its data) or times out (not ok)."""
    token_id = token.id if isinstance(token, WaitToken) else token
    rc = _require_run("wait.for_token")
    rc.check_interrupts()
    rc.enter_wait()
    try:
        rec = _record(rc, "token", "wait.for_token")
        store = rc.executor.store
        if rec is None:
            if store.get_waitpoint(token_id) is None:
                raise TokenNotFoundError(f"no wait token with id {token_id!r}")
            row = _step_row(rc, "token", "wait.for_token", waitpoint_id=token_id)
            store.attach_waitpoint(token_id, rc.run_id)
            store.record_step(row)
            _remember(rc, row)
            rec = row
        wp = store.get_waitpoint(rec["waitpoint_id"])
        assert wp is not None
        if wp["status"] == "PENDING":
            raise Suspend(wp["id"], _wait_info("token", "wait.for_token"))
        if wp["status"] == "COMPLETED":
            return Result(ok=True, id=wp["id"], output=wp["output"])
        return Result(ok=False, id=wp["id"], error=wp["output"] or {"message": wp["status"]})
    finally:
        rc.exit_wait()


def complete_token(token: WaitToken | str, data: Any = None) -> TokenCompletion:
    """Complete a token from any process; the waiting run resumes with ``data``.
    Completing a token twice changes nothing and says so."""
    token_id = token.id if isinstance(token, WaitToken) else token
    store = get_runtime().store
    wp = store.get_waitpoint(token_id)
    if wp is None or wp["kind"] != "MANUAL":
        raise TokenNotFoundError(f"no wait token with id {token_id!r}")
    data = secrets.safe_json(data)
    # a NUL or an oversized value is refused here, by name, not by the database
    check_json_size(data, "data", get_runtime().settings.max_output_bytes)
    changed, row = store.complete_waitpoint(token_id, data)
    assert row is not None
    return TokenCompletion(
        success=changed, already_completed=not changed, status=_token_status(row["status"])
    )


def retrieve_token(token_id: str) -> dict[str, Any]:
    wp = get_runtime().store.get_waitpoint(token_id)
    if wp is None or wp["kind"] != "MANUAL":
        raise TokenNotFoundError(f"no wait token with id {token_id!r}")
    return {**dict(wp), "status": _token_status(wp["status"])}


# ----------------------------------------------------------------------- steps
def step(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` once per run and record its (JSON) result; a replay returns the record
    without calling ``fn`` again. Put side effects (charging a card, sending an email,
    calling a model) in steps."""
    rc = _require_run("wait.step")
    rc.check_interrupts()
    rec = _record(rc, "step", name)
    if rec is not None:
        return rec["result"]  # type: ignore[no-any-return,unused-ignore]
    value = fn()
    result = secrets.safe_json(value)
    check_json_size(result, f"step {name!r} result", rc.executor.settings.max_output_bytes)
    row = _step_row(rc, "step", name, result=result)
    rc.executor.store.record_step(row)
    _remember(rc, row)
    return value


class _Wait:
    for_ = staticmethod(for_)
    until = staticmethod(until)
    create_token = staticmethod(create_token)
    for_token = staticmethod(for_token)
    complete_token = staticmethod(complete_token)
    retrieve_token = staticmethod(retrieve_token)
    step = staticmethod(step)


wait = _Wait()
