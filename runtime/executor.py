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
from .retry import backoff_ms
from .statuses import RunStatus
from .task import Task, get_task

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
    ``result``), or positionally as (payload, ctx) when it names others."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn(available.get("payload"), available.get("ctx"))
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return fn(**available)
    names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if names and all(n in available for n in names):
        return fn(**{n: available[n] for n in names})
    positional = [available.get("payload"), available.get("ctx")]
    return fn(*positional[: max(1, min(2, len(names)))])


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
        """Write buffered logs and changed metadata of every running attempt."""
        with self._lock:
            contexts = list(self.active.values())
        logs: list[dict[str, Any]] = []
        meta: dict[str, Any] = {}
        for rc in contexts:
            with rc.lock:
                logs += rc.logs
                rc.logs = []
                if rc.metadata_dirty:
                    meta[rc.run_id] = dict(rc.metadata)
                    rc.metadata_dirty = False
        self.store.write_buffers(logs, meta)

    def running_ids(self) -> list[str]:
        with self._lock:
            return list(self.active)

    def shutdown_interrupt(self) -> None:
        with self._lock:
            contexts = list(self.active.values())
        for rc in contexts:
            self._interrupt(rc, WorkerShutdown)

    def run_detached_on_complete(self, run_id: str) -> None:
        run = self.store.get_run(run_id)
        task = get_task(run["task_identifier"]) if run is not None else None
        if run is None or task is None or task.on_complete is None:
            return
        try:
            payload = secrets.decode(run["payload"], self.runtime.encryption_key)
            payload = task.parse_payload(payload)
        except Exception:  # the hook still learns the outcome, with the raw payload
            payload = run["payload"]
        result = {"ok": False, "status": run["status"], "output": None, "error": run["error"]}
        try:
            call_hook(
                task.on_complete, payload=payload, ctx=self._task_context(run, task), result=result
            )
        except Exception:
            log.exception(
                "on_complete hook of run %s failed",
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
                if rc.attempt == 1 and not rc.resumed and task.on_start:
                    call_hook(task.on_start, payload=payload, ctx=rc.ctx)
                output = task.call(payload, rc.ctx)
            finally:
                with rc.lock:
                    rc.armed = False  # type: ignore[attr-defined]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(rc.thread_id), None)
            output = secrets.safe_json(task.check_output(output))
            # a NUL, or an output over the limit, fails the attempt here, named, before
            # on_success and before the statement that ends the attempt
            check_json_size(output, "output", self.settings.max_output_bytes)
        except Suspend as s:
            return Outcome(RunStatus.WAITING, waiting_on=s.waitpoint_id)
        except RunCanceled:
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

    def _failed(self, rc: RunContext, task: Task[Any], payload: Any, exc: BaseException) -> Outcome:
        error = serialize_error(exc)
        self.log_line(
            rc,
            "error",
            f"attempt {rc.attempt} failed: {error['message']}",
            {"error_type": error["type"]},
        )
        self._cleanup(rc, task, payload)
        policy = rc.run["retry"] or {}
        max_attempts = rc.run["max_attempts"] or policy.get("max_attempts", 1)
        if not isinstance(exc, NON_RETRYABLE) and rc.attempt < max_attempts:
            delay = backoff_ms(policy, rc.attempt) if policy else 0
            return Outcome(
                RunStatus.QUEUED,
                error=error,
                attempt_status="FAILED",
                retry_at=utcnow() + timedelta(milliseconds=delay),
            )
        return self._final(rc, payload, RunStatus.FAILED, error=error)

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
        if status == RunStatus.COMPLETED and task.on_success:
            hooks.append((task.on_success, {"output": output}))
        if status == RunStatus.FAILED and task.on_failure:
            hooks.append((task.on_failure, {"error": error}))
        if task.on_complete:
            hooks.append(
                (
                    task.on_complete,
                    {
                        "result": {
                            "ok": status == RunStatus.COMPLETED,
                            "status": status.value,
                            "output": output,
                            "error": error,
                        }
                    },
                )
            )
        for hook, extra in hooks:
            try:
                call_hook(hook, payload=payload, ctx=rc.ctx, **extra)
            except Exception as exc:  # hook errors are reported, never change the outcome
                self.log_line(
                    rc, "error", f"hook {getattr(hook, '__name__', hook)} failed: {exc}", {}
                )
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
