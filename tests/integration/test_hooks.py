"""Trigger.dev v4's lifecycle hooks on a real worker: catch_error, on_start_attempt,
on_wait/on_resume, on_cancel, middleware with run_locals, and the global hooks of every
task (``tasks.on_failure(fn)``...). On both tiers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import RunStatus, hooks, run_locals, runs, tasks, wait
from tests import hook_tasks as h
from tests import tasks as t
from tests.helpers import wait_final, wait_for


@pytest.fixture(autouse=True)
def _global_hooks() -> Iterator[None]:
    """Global hooks are per process: each test leaves them as it found them."""
    saved = hooks.registered()
    yield
    hooks.restore(saved)


def _trigger(task_id: str, trace: Path, **payload: Any) -> str:
    return tasks.trigger(task_id, {"trace": str(trace), **payload}).id


def _attempt_times(lines: list[str]) -> list[float]:
    return [float(x.split(":")[2]) for x in lines if x.startswith("attempt:")]


# ---------------------------------------------------------------------------- catch_error
def test_catch_error_can_skip_the_retries(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run = wait_final(_trigger("h-catch", trace, answer="skip"))
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["type"] == "ConnectionError"
    lines = t.read_trace(trace)
    # it saw the exception itself, the retry the policy had planned, and the policy
    assert "catch_error:1:ConnectionError:at:4" in lines
    assert [x for x in lines if x.startswith("on_failure")] == ["on_failure:1"]


def test_without_an_answer_the_task_policy_retries(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run = wait_final(_trigger("h-catch", trace, fail_times=1))
    assert run.status == RunStatus.COMPLETED and run.output == {"attempt": 2}
    lines = t.read_trace(trace)
    assert [x for x in lines if x.startswith("catch_error")] == [
        "catch_error:1:ConnectionError:at:4"
    ]
    # on_start once per run, on_start_attempt before each attempt
    assert [x for x in lines if x.startswith("on_start")] == [
        "on_start:1", "on_start_attempt:1", "on_start_attempt:2"
    ]


def test_catch_error_moves_the_next_attempt(env: Any, worker: Any, tmp_path: Path):
    later = tmp_path / "later"
    delayed = tmp_path / "delayed"
    run_later = wait_final(_trigger("h-catch", later, fail_times=1, answer="later", later_s=0.8))
    run_delayed = wait_final(
        _trigger("h-catch", delayed, fail_times=1, answer="delay", delay_ms=600)
    )
    assert run_later.status == run_delayed.status == RunStatus.COMPLETED
    # the policy alone would retry after 20 ms
    first, second = _attempt_times(t.read_trace(later))
    assert second - first >= 0.8
    first, second = _attempt_times(t.read_trace(delayed))
    assert second - first >= 0.6


def test_catch_error_bounds_the_attempts_and_replaces_the_error(
    env: Any, worker: Any, tmp_path: Path
):
    policy = wait_final(_trigger("h-catch", tmp_path / "policy", answer="policy"))
    assert policy.status == RunStatus.FAILED and policy.attempt_count == 2
    replaced = wait_final(_trigger("h-catch", tmp_path / "replaced", answer="replace"))
    # the retries still follow the policy; each attempt's error is the one it gave
    assert replaced.status == RunStatus.FAILED and replaced.attempt_count == 4
    assert replaced.error["type"] == "ValueError"
    assert replaced.error["message"] == "the warehouse refused the password"
    assert all(a.error["type"] == "ValueError" for a in replaced.attempts)
    # on the last attempt catch_error learns no retry is planned
    assert "catch_error:4:ConnectionError:none:4" in t.read_trace(tmp_path / "replaced")


def test_a_failing_or_nonsense_catch_error_crashes_the_run(
    env: Any, worker: Any, tmp_path: Path
):
    for answer in ("raise", "nonsense"):
        trace = tmp_path / answer
        run = wait_final(_trigger("h-catch", trace, answer=answer))
        assert run.status == RunStatus.CRASHED and run.attempt_count == 1
        assert run.error["code"] == "HANDLE_ERROR_ERROR"
        assert "catch_error failed" in run.error["message"]
        assert "flaky on attempt 1" in run.error["message"]  # the error it was handling
        lines = t.read_trace(trace)
        assert not any(x.startswith("on_failure") for x in lines)  # as in Trigger.dev
        assert "on_complete:1" in lines


def test_abort_is_not_offered_to_catch_error(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run = wait_final(_trigger("h-catch", trace, abort=True, answer="delay", delay_ms=10))
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert not any(x.startswith("catch_error") for x in t.read_trace(trace))


def test_global_catch_error_answers_for_tasks_without_one(
    env: Any, worker: Any, tmp_path: Path
):
    seen: list[str] = []

    @tasks.catch_error
    def no_retry_for_connection_errors(ctx: Any, error: BaseException) -> Any:
        seen.append(f"{ctx.task['id']}:{type(error).__name__}")
        return {"skip_retrying": True} if isinstance(error, ConnectionError) else None

    plain = wait_final(_trigger("h-plain", tmp_path / "plain", fail_times=3))
    assert plain.status == RunStatus.FAILED and plain.attempt_count == 1
    # a task's own catch_error speaks first; its None lets the global one answer
    own = wait_final(_trigger("h-catch", tmp_path / "own", fail_times=1, answer="delay",
                              delay_ms=10))
    assert own.status == RunStatus.COMPLETED and own.attempt_count == 2
    fallback = wait_final(_trigger("h-catch", tmp_path / "fallback", fail_times=1))
    assert fallback.status == RunStatus.FAILED and fallback.attempt_count == 1
    assert seen == ["h-plain:ConnectionError", "h-catch:ConnectionError"]


# -------------------------------------------------------------------- middleware, locals
def test_middleware_wraps_the_attempt_and_shares_run_locals(
    env: Any, worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"

    @tasks.middleware("outer")
    def outer(payload: Any, ctx: Any, next: Any) -> None:
        t.trace(payload, "global-mw:before")
        next()
        t.trace(payload, "global-mw:after")

    run = wait_final(_trigger("h-middleware", trace))
    assert run.status == RunStatus.COMPLETED
    assert run.output == {"who": "set by middleware in attempt 1"}
    assert t.read_trace(trace) == [
        "global-mw:before", "task-mw:before", "run", "task-mw:after", "global-mw:after",
        "on_success:set by middleware in attempt 1",
    ]
    # a task without the middleware does not see the value; outside a run there is none
    other = wait_final(_trigger("h-plain", tmp_path / "other"))
    assert other.output == {"who": None}
    assert run_locals.get(h.WHO) is None
    with pytest.raises(KeyError, match="'who' is not set"):
        run_locals.get_or_raise(h.WHO)


def test_a_middleware_error_fails_the_attempt_and_is_retried(
    env: Any, worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    run = wait_final(_trigger("h-middleware", trace, mw="raise"))
    assert run.status == RunStatus.COMPLETED and run.attempt_count == 2
    assert run.attempts[0].error["message"] == "middleware could not connect"
    assert t.read_trace(trace).count("run") == 1


def test_a_middleware_cannot_skip_the_task_or_hide_its_error(
    env: Any, worker: Any, tmp_path: Path
):
    skipped = wait_final(_trigger("h-middleware", tmp_path / "skip", mw="skip-next"))
    assert skipped.status == RunStatus.FAILED
    assert "returned without calling next()" in skipped.error["message"]
    assert "run" not in t.read_trace(tmp_path / "skip")
    swallowed = wait_final(_trigger("h-middleware", tmp_path / "swallow", mw="swallow",
                                    fail=True))
    assert swallowed.status == RunStatus.FAILED
    assert swallowed.error["message"] == "the task failed"
    assert "task-mw:swallowed" in t.read_trace(tmp_path / "swallow")


# -------------------------------------------------------------- waits, resume and cancel
def test_on_wait_and_on_resume_around_a_suspension(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    run_id = _trigger("h-token", trace)
    wait_for(lambda: runs.retrieve(run_id).status == RunStatus.WAITING)
    token_id = next(x for x in t.read_trace(trace) if x.startswith("token:")).split(":", 1)[1]
    wait.complete_token(token_id, {"approved": True})
    run = wait_final(run_id)
    assert run.status == RunStatus.COMPLETED and run.output == {
        "ok": True, "data": {"approved": True}
    }
    lines = [x for x in t.read_trace(trace) if not x.startswith("token:")]
    # the resumed execution runs the middleware again, then on_resume, then replays
    assert lines == [
        "mw", "on_start:1", "on_start_attempt:1", f"on_wait:token:{token_id}",
        "mw", f"on_resume:token:{token_id}", "after-wait",
    ]


def test_on_cancel_runs_when_an_executing_run_is_canceled(
    env: Any, worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    run_id = _trigger("h-cancel", trace)
    wait_for(lambda: "started" in t.read_trace(trace))
    runs.cancel(run_id)
    run = wait_final(run_id)
    assert run.status == RunStatus.CANCELED
    wait_for(lambda: "on_complete:1" in t.read_trace(trace))
    assert t.read_trace(trace) == ["started", "on_cancel:1", "on_complete:1"]


def test_on_cancel_runs_for_runs_canceled_before_or_between_executions(
    env: Any, worker: Any, tmp_path: Path
):
    """Trigger.dev calls onCancel only while a run executes (their #3119): here a run
    canceled while delayed, or while suspended on a wait, gets it too, from a worker."""
    delayed = tmp_path / "delayed"
    handle = tasks.trigger("h-cancel", {"trace": str(delayed)}, delay="1h")
    runs.cancel(handle.id)
    wait_for(lambda: "on_complete:0" in t.read_trace(delayed), timeout=15)
    assert t.read_trace(delayed) == ["on_cancel:0", "on_complete:0"]

    waiting = tmp_path / "waiting"
    run_id = _trigger("h-token", waiting)
    wait_for(lambda: runs.retrieve(run_id).status == RunStatus.WAITING)
    runs.cancel(run_id)
    wait_for(lambda: any(x.startswith("on_cancel") for x in t.read_trace(waiting)), timeout=15)
    assert [x for x in t.read_trace(waiting) if x.startswith("on_cancel")] == ["on_cancel:1"]


# ------------------------------------------------------------------------- global hooks
def test_global_hooks_run_for_every_task_before_its_own(
    env: Any, worker: Any, tmp_path: Path
):
    @tasks.on_start_attempt("attempts")
    def attempts(payload: Any, ctx: Any) -> None:
        t.trace(payload, f"global-start-attempt:{ctx.attempt['number']}")

    @tasks.on_failure
    def alert(payload: Any, ctx: Any, error: dict) -> None:
        t.trace(payload, f"global-on_failure:{ctx.task['id']}:{error['type']}")

    trace = tmp_path / "trace"
    run = wait_final(_trigger("h-plain", trace, fail_times=9))
    assert run.status == RunStatus.FAILED and run.attempt_count == 4
    lines = t.read_trace(trace)
    assert [x for x in lines if x.startswith("global-start")] == [
        f"global-start-attempt:{n}" for n in range(1, 5)
    ]
    assert lines[-2:] == ["global-on_failure:h-plain:ConnectionError", "on_failure:4"]

    # registering the same function again (a module imported twice) does not double it
    tasks.on_failure(alert)
    again = tmp_path / "again"
    wait_final(_trigger("h-plain", again, fail_times=9))
    assert [x for x in t.read_trace(again) if x.startswith("global-on_failure")] == [
        "global-on_failure:h-plain:ConnectionError"
    ]


def test_global_on_complete_reaches_runs_that_end_outside_a_worker(
    env: Any, worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    tasks.on_complete("finals", lambda payload, result: t.trace(
        payload, f"global-on_complete:{result['status']}"
    ))
    handle = tasks.trigger("h-plain", {"trace": str(trace)}, delay="1h")
    runs.cancel(handle.id)
    wait_for(lambda: "global-on_complete:CANCELED" in t.read_trace(trace), timeout=15)
    assert t.read_trace(trace) == ["global-on_complete:CANCELED"]
