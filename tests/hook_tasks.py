"""Tasks for the lifecycle-hook tests (tests/integration/test_hooks.py): each hook appends
a line to the trace file named in the payload, so the test reads what ran, in order."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from runtime import AbortTaskRunError, RetryOptions, run_locals, task, wait
from tests.tasks import _hook as _line
from tests.tasks import trace

RETRY = RetryOptions(max_attempts=4, factor=1, min_timeout_ms=20, randomize=False)
WHO = run_locals.create("who")


def _catch(payload: dict, ctx: Any, error: BaseException, retry_at: Any, retry: dict) -> Any:
    """Answers what the payload asks for, and notes what it was given."""
    trace(payload, f"catch_error:{ctx.attempt['number']}:{type(error).__name__}:"
                   f"{'at' if retry_at is not None else 'none'}:{retry['max_attempts']}")
    answer = payload.get("answer")
    if answer == "skip":
        return {"skip_retrying": True}
    if answer == "later":
        return {"retry_at": datetime.now(UTC) + timedelta(seconds=payload["later_s"])}
    if answer == "delay":
        return {"retry_delay_ms": payload["delay_ms"]}
    if answer == "policy":
        return {"retry": RetryOptions(max_attempts=2, min_timeout_ms=10)}
    if answer == "replace":
        return {"error": ValueError("the warehouse refused the password")}
    if answer == "raise":
        raise KeyError("no such rule")
    if answer == "nonsense":
        return "yes please"
    return None


@task(
    id="h-catch",
    retry=RETRY,
    catch_error=_catch,
    on_start=_line("on_start"),
    on_start_attempt=_line("on_start_attempt"),
    on_failure=_line("on_failure"),
    on_complete=_line("on_complete"),
)
def catch(payload: dict, ctx: Any) -> dict:
    attempt = ctx.attempt["number"]
    trace(payload, f"attempt:{attempt}:{time.time()}")
    if payload.get("abort"):
        raise AbortTaskRunError("no point retrying")
    if attempt <= payload.get("fail_times", 99):
        raise ConnectionError(f"flaky on attempt {attempt}")
    return {"attempt": attempt}


@task(id="h-plain", retry=RETRY, on_failure=_line("on_failure"))
def plain(payload: dict, ctx: Any) -> dict:
    trace(payload, f"attempt:{ctx.attempt['number']}")
    if ctx.attempt["number"] <= payload.get("fail_times", 0):
        raise ConnectionError("flaky")
    return {"who": run_locals.get(WHO)}


def _task_middleware(payload: dict, ctx: Any, next: Any) -> None:
    trace(payload, "task-mw:before")
    if payload.get("mw") == "skip-next":
        return
    if payload.get("mw") == "raise" and ctx.attempt["number"] == 1:
        raise RuntimeError("middleware could not connect")
    run_locals.set(WHO, f"set by middleware in attempt {ctx.attempt['number']}")
    try:
        next()
    except ValueError:
        if payload.get("mw") != "swallow":
            raise
        trace(payload, "task-mw:swallowed")
    trace(payload, "task-mw:after")


@task(
    id="h-middleware",
    retry=RETRY,
    middleware=_task_middleware,
    on_success=lambda payload, output: trace(payload, f"on_success:{output['who']}"),
)
def with_middleware(payload: dict, ctx: Any) -> dict:
    trace(payload, "run")
    if payload.get("fail"):
        raise ValueError("the task failed")
    return {"who": run_locals.get_or_raise(WHO)}


@task(
    id="h-token",
    middleware=lambda payload, next: (trace(payload, "mw"), next()),
    on_wait=lambda payload, wait: trace(payload, f"on_wait:{wait['type']}:{wait['waitpoint_id']}"),
    on_resume=lambda payload, wait: trace(
        payload, f"on_resume:{wait['type']}:{wait['waitpoint_id']}"
    ),
    on_start=_line("on_start"),
    on_start_attempt=_line("on_start_attempt"),
    on_cancel=_line("on_cancel"),
)
def token_wait(payload: dict, ctx: Any) -> dict:
    token = wait.create_token(timeout="1m")
    trace(payload, f"token:{token.id}")
    res = wait.for_token(token)
    trace(payload, "after-wait")
    return {"ok": res.ok, "data": res.output}


@task(
    id="h-cancel",
    on_cancel=_line("on_cancel"),
    on_failure=_line("on_failure"),
    on_complete=_line("on_complete"),
)
def cancel_me(payload: dict, ctx: Any) -> None:
    trace(payload, "started")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.02)
