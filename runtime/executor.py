"""Run one claimed attempt of a task, and keep the attempts of this process alive.

The worker's middleware claims a run and hands the row here; ``execute`` runs hooks and the
task function on the worker thread and returns an ``Outcome`` that the middleware writes in
one transaction. A single monitor thread per process renews every lease with one UPDATE,
flushes buffered logs and metadata, and interrupts attempts that were canceled or ran past
their max_duration.
"""

from __future__ import annotations

import ctypes
import inspect
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import secrets
from .context import RunContext, RunInfo, TaskContext, reset_current, set_current
from .durations import utcnow
from .engine_json import check_json_size, diagnostic_text
from .errors import (
    AbortTaskRunError,
    ConcurrentWaitError,
    MaxDurationExceeded,
    NonDeterminismError,
    OutputTooLargeError,
    PayloadValidationError,
    RunCanceled,
    RunInterrupt,
    Suspend,
    WorkerShutdown,
)
from .hooks import ErrorDecision, HookKind, hooks_for, next_retry, parse_decision
from .metadata import apply_ops
from .retry import backoff_ms
from .statuses import RunStatus
from .store import metadata_ops
from .task import Task, get_task
from .waits import last_wait

log = logging.getLogger("buster.executor")

#: errors that end a run at once: retrying cannot help
NON_RETRYABLE = (
    AbortTaskRunError,
    PayloadValidationError,
    ConcurrentWaitError,
    NonDeterminismError,
    OutputTooLargeError,
)


@dataclass
class Outcome:
    status: RunStatus
    output: Any = None
    error: dict[str, Any] | None = None
    retry_at: Any = None
    waiting_on: str | None = None
    attempt_status: str | None = None
    execution_ms: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # set when changed since the last flush


def serialize_error(exc: BaseException, code: str | None = None) -> dict[str, Any]:
    errors = exc.errors if isinstance(exc, PayloadValidationError) else None
    return {
        "type": type(exc).__name__,
        "code": code or getattr(exc, "code", None) or "TASK_RUN_ERROR",
        "message": diagnostic_text(str(exc) or type(exc).__name__),
        "stack": diagnostic_text(
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:]
        ),
        **({"errors": diagnostic_text(errors)} if errors is not None else {}),
    }


def call_hook(fn: Any, **available: Any) -> Any:
    """Call a hook with the arguments it names (``payload``, ``ctx``, ``output``, ``error``,
    ``result``, ``wait``, ``next``...), or positionally in the order given here (payload,
    ctx, then the hook's own) when it names others."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(available.get("payload"), available.get("ctx"))
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return fn(**available)
    names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if names and all(n in available for n in names):
        return fn(**{n: available[n] for n in names})
    positional = list(available.values())
    return fn(*positional[: max(1, min(len(positional), len(names)))])


def run_middleware(chain: list[Any], payload: Any, ctx: Any, body: Any) -> Any:
    """``body()`` inside each middleware of ``chain`` (the first outermost); returns what
    ``body`` returned. A middleware must call ``next()`` exactly once; what it returns is
    ignored. An error of ``body`` is raised even if a middleware swallowed it."""
    done: list[Any] = []  # body's result, or the exception it raised
    failed: list[BaseException] = []

    def call(i: int) -> None:
        if i == len(chain):
            try:
                done.append(body())
            except BaseException as exc:
                failed.append(exc)
                raise
            return
        calls = 0

        def next_() -> Any:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise RuntimeError(f"middleware {_name(chain[i])} called next() twice")
            call(i + 1)
            return done[0]

        call_hook(chain[i], payload=payload, ctx=ctx, next=next_)
        if calls == 0 and not failed:
            raise RuntimeError(
                f"middleware {_name(chain[i])} returned without calling next(): the task "
                "did not run"
            )

    call(0)
    if failed:
        raise failed[0]
    return done[0]


def _name(fn: Any) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or fn)


class Executor:
    def __init__(self, runtime: Any, owner: str):
        self.runtime = runtime
        self.settings = runtime.settings
        self.store = runtime.store
        self.owner = owner
        self.active: dict[str, RunContext] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # ------------------------------------------------------------------ monitor thread
    def start(self) -> None:
        if self._monitor is None:
            self._monitor = threading.Thread(
                target=self._monitor_loop, name="buster-monitor", daemon=True
            )
            self._monitor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout=5)
            self._monitor = None

    def _monitor_loop(self) -> None:
        tick = min(0.1, self.settings.heartbeat_seconds / 2)
        last_beat = last_flush = 0.0
        while not self._stop.wait(tick):
            now = time.monotonic()
            try:
                self._check_deadlines()
                if now - last_flush >= self.settings.log_flush_seconds:
                    last_flush = now
                    self.flush()
                if now - last_beat >= self.settings.heartbeat_seconds:
                    last_beat = now
                    self.heartbeat()
            except Exception:
                log.exception("monitor tick failed", extra={"action": "monitor"})

    def heartbeat(self) -> None:
        with self._lock:
            ids = list(self.active)
        if not ids:
            return
        alive = self.store.renew_leases(self.owner, ids, self.settings.lease_seconds)
        for run_id in set(ids) - alive:
            with self._lock:
                rc = self.active.get(run_id)
            if rc is not None:
                # canceled (or lease taken away): stop the attempt at once
                rc.canceled = True
                self._interrupt(rc, RunCanceled)

    def _check_deadlines(self) -> None:
        with self._lock:
            contexts = list(self.active.values())
        now = time.monotonic()
        for rc in contexts:
            limit = rc.run["max_duration"]
            if not limit or rc.timed_out:
                continue
            used = rc.run["attempt_execution_ms"] / 1000 + (now - rc.segment_started)
            if used > limit:
                rc.timed_out = True
                self._interrupt(rc, MaxDurationExceeded)

    def _interrupt(self, rc: RunContext, exc: type[BaseException]) -> None:
        """Raise ``exc`` inside the attempt's thread (as Dramatiq's TimeLimit does). A
        blocking C call finishes first; warehouse queries carry their own timeouts."""
        with rc.lock:
            if getattr(rc, "armed", False):
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(rc.thread_id), ctypes.py_object(exc)
                )

    def flush(self) -> None:
        """Write buffered logs and changed metadata of every running attempt, with the
        changes they sent to other runs' metadata; first apply those other runs sent to
        them (metadata.parent/root of their children)."""
        with self._lock:
            contexts = list(self.active.values())
        if contexts:
            self._receive_metadata_ops([rc.run_id for rc in contexts])
        logs: list[dict[str, Any]] = []
        meta: dict[str, Any] = {}
        sent: list[tuple[str, dict[str, Any]]] = []
        for rc in contexts:
            with rc.lock:
                logs += rc.logs
                rc.logs = []
                if rc.metadata_dirty:
                    meta[rc.run_id] = dict(rc.metadata)
                    rc.metadata_dirty = False
                sent += rc.sent_ops
                rc.sent_ops = []
        self.store.write_buffers(logs, meta, sent)

    def _receive_metadata_ops(self, run_ids: list[str]) -> None:
        """Apply the queued changes to the documents of runs executing here. A run that
        ended meanwhile gets them back in the queue, for the timer loop. Held under the
        executor's lock: an attempt that ends takes its document only after this."""
        received = metadata_ops.take_for_executing(self.store, run_ids)
        if not received:
            return
        limit = self.settings.metadata_max_bytes
        back: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for run_id, ops in received.items():
                rc = self.active.get(run_id)
                if rc is None:
                    back += [(run_id, op) for op in ops]
                    continue
                with rc.lock:
                    rc.metadata, skipped = apply_ops(rc.metadata, ops, limit)
                    rc.metadata_dirty = rc.metadata_touched = True
                for why in skipped:
                    self.log_line(rc, "warn", f"a metadata change sent to this run was "
                                              f"skipped: {why}", {})
        if back:
            with self.store.begin() as conn:
                metadata_ops.queue(conn, back)

    def running_ids(self) -> list[str]:
        with self._lock:
            return list(self.active)

    def shutdown_interrupt(self) -> None:
        with self._lock:
            contexts = list(self.active.values())
        for rc in contexts:
            self._interrupt(rc, WorkerShutdown)

    def run_detached_on_complete(self, run_id: str) -> None:
        """The hooks of a run that ended outside a worker (canceled while queued, delayed
        or waiting; expired; crashed): ``on_cancel`` for a canceled one (Trigger.dev calls
        it only while executing, their #3119), then ``on_complete``."""
        run = self.store.get_run(run_id)
        task = get_task(run["task_identifier"]) if run is not None else None
        if run is None or task is None:
            return
        canceled = run["status"] == RunStatus.CANCELED
        hooks = [
            *(("on_cancel", h, {}) for h in (hooks_for("on_cancel", task) if canceled else [])),
            *(("on_complete", h, {"result": {"ok": False, "status": run["status"],
                                             "output": None, "error": run["error"]}})
              for h in hooks_for("on_complete", task)),
        ]
        if not hooks:
            return
        try:
            payload = secrets.decode(run["payload"], self.runtime.encryption_key)
            payload = task.parse_payload(payload)
        except Exception:  # the hooks still learn the outcome, with the raw payload
            payload = run["payload"]
        ctx = self._task_context(run, task)
        for kind, hook, extra in hooks:
            try:
                call_hook(hook, payload=payload, ctx=ctx, **extra)
            except Exception:
                log.exception(
                    "%s hook %s of run %s failed",
                    kind,
                    _name(hook),
                    run_id,
                    extra={"run_id": run_id, "action": "hook_failed"},
                )

    # ------------------------------------------------------------------ one attempt
    def execute(self, run: Any) -> Outcome:
        task = get_task(run["task_identifier"])
        assert task is not None, "the middleware checks the task is known"
        resumed = run["attempt_started_at"] is not None and (
            run["attempt_started_at"] != run["executing_since"]
        )
        rc = RunContext(
            run=run,
            task=task,
            executor=self,
            attempt=run["attempt_count"],
            resumed=resumed,
            ctx=self._task_context(run, task),
            metadata=dict(run["metadata"] or {}),
        )
        token = set_current(rc)
        with self._lock:
            self.active[rc.run_id] = rc
        try:
            outcome = self._run_attempt(rc, task)
        finally:
            with self._lock:
                self.active.pop(rc.run_id, None)
            reset_current(token)
        outcome.execution_ms = self.segment_ms(rc)
        with rc.lock:
            sent, rc.sent_ops = rc.sent_ops, []
        if sent:  # changes to the parent's or root's metadata, not yet flushed
            try:
                self.store.write_buffers([], {}, sent)
            except Exception:
                log.exception("run %s: its metadata changes to other runs were lost",
                              rc.run_id, extra={"run_id": rc.run_id, "action": "metadata_ops"})
        with rc.lock:
            outcome.logs, rc.logs = rc.logs, []
            # the whole document, even if a periodic flush wrote it already: that flush may
            # land after this final write, where its status guard drops it
            if rc.metadata_touched:
                outcome.metadata = dict(rc.metadata)
        return outcome

    def _run_attempt(self, rc: RunContext, task: Task[Any]) -> Outcome:
        run = rc.run
        payload: Any = None
        try:
            try:
                with rc.lock:
                    rc.armed = True  # type: ignore[attr-defined]
                payload = task.parse_payload(
                    secrets.decode(run["payload"], self.runtime.encryption_key)
                )
                output = run_middleware(
                    hooks_for("middleware", task),
                    payload,
                    rc.ctx,
                    lambda: self._start_and_call(rc, task, payload),
                )
            finally:
                with rc.lock:
                    rc.armed = False  # type: ignore[attr-defined]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(rc.thread_id), None)
            output = secrets.safe_json(task.check_output(output))
            # a NUL, or an output over the limit, fails the attempt here, named, before
            # on_success and before the statement that ends the attempt
            check_json_size(output, "output", self.settings.max_output_bytes)
        except Suspend as s:
            self._notify(rc, "on_wait", payload, wait=s.wait)
            return Outcome(RunStatus.WAITING, waiting_on=s.waitpoint_id)
        except RunCanceled:
            self._notify(rc, "on_cancel", payload)
            return self._final(
                rc,
                payload,
                RunStatus.CANCELED,
                error={"type": "CANCELED", "message": "run was canceled"},
            )
        except MaxDurationExceeded:
            err = {
                "type": "MAX_DURATION_EXCEEDED",
                "code": "MAX_DURATION_EXCEEDED",
                "message": f"run exceeded max_duration of {run['max_duration']} s",
            }
            return self._final(rc, payload, RunStatus.TIMED_OUT, error=err)
        except WorkerShutdown:
            return Outcome(RunStatus.QUEUED, attempt_status="RELEASED")
        except RunInterrupt as exc:  # pragma: no cover - future interrupts
            return self._final(rc, payload, RunStatus.SYSTEM_FAILURE, error=serialize_error(exc))
        except BaseException as exc:  # noqa: BLE001 - task code may raise anything
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            return self._failed(rc, task, payload, exc)
        self._cleanup(rc, task, payload)
        outcome = self._final(rc, payload, RunStatus.COMPLETED, output=output)
        return outcome

    def _start_and_call(self, rc: RunContext, task: Task[Any], payload: Any) -> Any:
        """Inside the middleware: the start hooks of this execution, then the task. An
        error of a start hook fails the attempt, as the task's own would."""
        if rc.resumed:
            hooks = hooks_for("on_resume", task)
            if hooks:
                wait = last_wait(rc)
                for hook in hooks:
                    call_hook(hook, payload=payload, ctx=rc.ctx, wait=wait)
        else:
            if rc.attempt == 1:
                for hook in hooks_for("on_start", task):
                    call_hook(hook, payload=payload, ctx=rc.ctx)
            for hook in hooks_for("on_start_attempt", task):
                call_hook(hook, payload=payload, ctx=rc.ctx)
        return task.call(payload, rc.ctx)

    def _failed(self, rc: RunContext, task: Task[Any], payload: Any, exc: BaseException) -> Outcome:
        error = serialize_error(exc)
        self.log_line(
            rc,
            "error",
            f"attempt {rc.attempt} failed: {error['message']}",
            {"error_type": error["type"]},
        )
        self._cleanup(rc, task, payload)
        if isinstance(exc, NON_RETRYABLE):
            return self._final(rc, payload, RunStatus.FAILED, error=error)
        policy = rc.run["retry"] or {}
        max_attempts = rc.run["max_attempts"] or policy.get("max_attempts", 1)
        now = utcnow()
        delay = backoff_ms(policy, rc.attempt) if policy else 0.0
        default_at = now + timedelta(milliseconds=delay) if rc.attempt < max_attempts else None
        try:
            decision = self._catch_error(
                rc, task, payload, exc, policy, default_at, delay if default_at else None
            )
        except Exception as hook_exc:  # Trigger.dev: HANDLE_ERROR_ERROR, the run CRASHED
            crashed = serialize_error(hook_exc, code="HANDLE_ERROR_ERROR")
            crashed["message"] = diagnostic_text(
                f"catch_error failed: {crashed['message']} (handling: {error['message']})"
            )
            return self._final(rc, payload, RunStatus.CRASHED, error=crashed)
        if decision is not None and decision.error is not None:
            error = serialize_error(decision.error)
        retry_at = next_retry(decision, policy, rc.attempt, max_attempts, now, default_at)
        if retry_at is not None:
            return Outcome(
                RunStatus.QUEUED, error=error, attempt_status="FAILED", retry_at=retry_at
            )
        return self._final(rc, payload, RunStatus.FAILED, error=error)

    def _catch_error(
        self,
        rc: RunContext,
        task: Task[Any],
        payload: Any,
        exc: BaseException,
        policy: dict[str, Any],
        default_at: Any,
        default_delay_ms: float | None,
    ) -> ErrorDecision | None:
        """The task's ``catch_error``, then the global ones, until one answers."""
        for catcher in hooks_for("catch_error", task, own_first=True):
            answer = call_hook(
                catcher,
                payload=payload,
                ctx=rc.ctx,
                error=exc,
                retry_at=default_at,
                retry_delay_ms=default_delay_ms,
                retry=dict(policy),
            )
            decision = parse_decision(answer, policy)
            if decision is not None:
                return decision
        return None

    def _notify(self, rc: RunContext, kind: HookKind, payload: Any, **extra: Any) -> None:
        """Hooks that report (on_wait, on_cancel): an error is logged on the run and
        changes nothing."""
        for hook in hooks_for(kind, rc.task):
            try:
                call_hook(hook, payload=payload, ctx=rc.ctx, **extra)
            except Exception as exc:
                self.log_line(rc, "error", f"{kind} hook {_name(hook)} failed: {exc}", {})

    def _final(
        self,
        rc: RunContext,
        payload: Any,
        status: RunStatus,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
    ) -> Outcome:
        task = rc.task
        hooks: list[Any] = []
        if status == RunStatus.COMPLETED:
            hooks += [(h, {"output": output}) for h in hooks_for("on_success", task)]
        if status == RunStatus.FAILED:
            hooks += [(h, {"error": error}) for h in hooks_for("on_failure", task)]
        result = {
            "ok": status == RunStatus.COMPLETED,
            "status": status.value,
            "output": output,
            "error": error,
        }
        hooks += [(h, {"result": result}) for h in hooks_for("on_complete", task)]
        for hook, extra in hooks:
            try:
                call_hook(hook, payload=payload, ctx=rc.ctx, **extra)
            except Exception as exc:  # hook errors are reported, never change the outcome
                self.log_line(rc, "error", f"hook {_name(hook)} failed: {exc}", {})
        return Outcome(status, output=output, error=error)

    def _cleanup(self, rc: RunContext, task: Task[Any], payload: Any) -> None:
        if task.cleanup is None:
            return
        try:
            call_hook(task.cleanup, payload=payload, ctx=rc.ctx)
        except Exception as exc:
            self.log_line(rc, "error", f"cleanup failed: {exc}", {})

    def log_line(self, rc: RunContext, level: str, message: str, attrs: dict[str, Any]) -> None:
        with rc.lock:
            rc.logs.append(
                {
                    "run_id": rc.run_id,
                    "attempt": rc.attempt,
                    "ts": utcnow(),
                    "level": level,
                    "message": diagnostic_text(message),
                    "attributes": diagnostic_text(attrs) if attrs else None,
                }
            )

    def segment_ms(self, rc: RunContext) -> int:
        return int((time.monotonic() - rc.segment_started) * 1000)

    def _task_context(self, run: Any, task: Task[Any]) -> TaskContext:
        from . import machines

        m = machines.machine(run["machine"] or task.machine)
        return TaskContext(
            run=RunInfo(
                id=run["id"],
                tags=list(run["tags"] or []),
                created_at=run["created_at"],
                started_at=run["started_at"],
                idempotency_key=run["idempotency_key_user"],
                max_attempts=run["max_attempts"] or 1,
                max_duration=run["max_duration"],
                is_replay=run["replayed_from"] is not None,
                parent_id=run["parent_id"],
                root_id=run["root_id"],
                batch_id=run["batch_id"],
                depth=run["depth"],
            ),
            task={"id": task.id},
            attempt={"number": run["attempt_count"]},
            queue={"name": run["queue"]},
            machine={"name": m.name, "cpu": m.cpu, "memory": m.memory_gb},
        )
