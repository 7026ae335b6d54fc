"""Durable waits: suspend, free the thread, resume by replay (issue: durable waits)."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime import RunStatus, get_runtime, runs, tasks, wait
from runtime.errors import (
    OutputTooLargeError,
    RunNotFoundError,
    SubtaskUnwrapError,
    UnstorableValueError,
)
from runtime.worker import WorkerProcess
from tests import tasks as t
from tests.helpers import wait_final, wait_for


@pytest.fixture
def one_thread_worker(env: Any) -> Iterator[WorkerProcess]:
    wp = WorkerProcess(get_runtime(), [env.queue, env.large_queue], threads=1)
    wp.start()
    yield wp
    wp.stop(timeout=2)


def _waitpoints(run_id: str) -> list[Any]:
    return get_runtime().store.list_waitpoints(run_id=run_id)


def test_long_wait_suspends_frees_the_thread_and_resumes_on_time(
    env: Any, one_thread_worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    handle = tasks.trigger("t-wait", {"seconds": 30, "trace": str(trace)})
    wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.WAITING)
    # the only worker thread is free: other runs complete while this one waits
    others = [tasks.trigger("t-echo", {"i": i}) for i in range(3)]
    for h in others:
        assert wait_final(h.id).status == RunStatus.COMPLETED
    assert runs.retrieve(handle.id).status == RunStatus.WAITING
    run = wait_final(handle.id, timeout=60)
    assert run.status == RunStatus.COMPLETED and run.output == {"n": 7}
    (wp,) = _waitpoints(handle.id)
    row = get_runtime().store.get_run(handle.id)
    lag = (row["executing_since"] - wp["due_at"]).total_seconds()
    assert 0 <= lag < 1.0, lag
    # code before the wait ran twice, the step body once
    assert t.read_trace(trace) == ["before", "step-body", "before", "after"]
    # execution time excludes the 30 s wait; wall time includes it
    assert run.execution_ms < 5000 and run.wall_time_ms >= 30_000
    assert run.attempt_count == 1


def test_parent_gets_child_failure_as_result_and_unwrap_raises(env: Any, worker: Any):
    run = wait_final(tasks.trigger("t-parent", {"fail": True}).id)
    assert run.status == RunStatus.COMPLETED
    assert run.output["ok"] is False and "failed on purpose" in run.output["error"]["message"]
    unwrapped = wait_final(tasks.trigger("t-parent", {"fail": True, "unwrap": True}).id)
    assert unwrapped.status == RunStatus.FAILED
    assert unwrapped.error["type"] == SubtaskUnwrapError.__name__
    assert "failed on purpose" in unwrapped.error["message"]
    good = wait_final(tasks.trigger("t-parent", {"fail": False}).id)
    assert good.output == {"ok": True, "output": {"i": 1, "double": 2}, "error": None}
    (child,) = [r for r in runs.list(task="t-child").data if r.parent_id == good.id]
    assert child.depth == 1 and child.root_id == good.id


def test_batch_trigger_and_wait_returns_results_in_order(env: Any, worker: Any):
    run = wait_final(tasks.trigger("t-batch-parent", {"n": 100}).id, timeout=90)
    assert run.status == RunStatus.COMPLETED
    assert run.output == {"outputs": list(range(100)), "ok": True}


def test_token_completed_from_another_process_resumes_with_data(
    env: Any, worker: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    handle = tasks.trigger("t-token", {"trace": str(trace)})
    wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.WAITING)
    token_id = next(x for x in t.read_trace(trace) if x.startswith("token:")).split(":", 1)[1]
    with pytest.raises(UnstorableValueError, match=r"data\.note contains a NUL"):
        wait.complete_token(token_id, {"note": "a\x00b"})  # refused, the run still waits
    with pytest.raises(OutputTooLargeError, match=r"^data is 10485762 bytes, larger than"):
        wait.complete_token(token_id, "x" * 10 * 1024 * 1024)  # refused too
    res = env.cli("tokens", "complete", token_id, "--data", '{"approved": true}')
    assert res.returncode == 0, res.stderr
    run = wait_final(handle.id)
    assert run.output == {"ok": True, "output": {"approved": True}, "error": None}
    again = wait.complete_token(token_id, {"approved": False})
    assert again.already_completed and not again.success


def test_token_timeout_resumes_with_timeout_result(env: Any, worker: Any):
    run = wait_final(tasks.trigger("t-token", {"timeout": "1s"}).id, timeout=30)
    assert run.output["ok"] is False
    assert run.output["error"]["type"] == "WAITPOINT_TIMEOUT"


def test_non_deterministic_replay_fails_with_clear_error(env: Any, worker: Any, tmp_path: Path):
    run = wait_final(tasks.trigger("t-nondeterministic", {"marker": str(tmp_path / "marker")}).id)
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["code"] == "NON_DETERMINISTIC_REPLAY"
    assert "t-slow" in run.error["message"] and "t-echo" in run.error["message"]


def test_concurrent_waits_fail_without_retry(env: Any, worker: Any):
    run = wait_final(tasks.trigger("t-concurrent-wait", {}).id)
    assert run.status == RunStatus.FAILED and run.attempt_count == 1
    assert run.error["code"] == "TASK_DID_CONCURRENT_WAIT"


def test_cancel_waiting_parent_cancels_waitpoint_and_children(env: Any, tmp_path: Path):
    # nothing declares the child's queue: the parent stays WAITING on a child that waits
    # for it in PENDING_VERSION (runtime/pending_queues.py)
    wp = WorkerProcess(get_runtime(), [env.queue], threads=2)
    wp.start()
    try:
        handle = tasks.trigger("t-parent", {"child_queue": f"{env.queue}-nobody"})
        wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.WAITING)
        (child,) = get_runtime().store.children(handle.id)
        waiting = runs.retrieve(child["id"])
        assert (waiting.status, waiting.pending_queue) == (RunStatus.PENDING_VERSION,
                                                           f"{env.queue}-nobody")
        assert sorted(runs.cancel(handle.id)) == sorted([handle.id, child["id"]])
        assert runs.retrieve(child["id"]).status == RunStatus.CANCELED
        assert [w["status"] for w in _waitpoints(handle.id)] == ["CANCELED"]
        time.sleep(0.5)  # the canceled child never resumes the canceled parent
        assert runs.retrieve(handle.id).status == RunStatus.CANCELED
    finally:
        wp.stop(timeout=1)
        if env.backend == "postgres":
            from tests.conftest import _delete_queues

            _delete_queues(env.settings["broker_url"], [f"{env.queue}-nobody"])


@pytest.mark.integration
def test_thousand_waiting_runs_on_two_threads(pg_env: Any):
    wp = WorkerProcess(get_runtime(), [pg_env.queue], threads=2)
    wp.start()
    try:
        started = time.monotonic()
        batch = tasks.batch_trigger("t-wait", [{"payload": {"seconds": 10}}] * 1000)
        wait_for(
            lambda: len(runs.list(batch=batch.batch_id, status="COMPLETED", limit=1000)) == 1000,
            timeout=240,
            interval=0.5,
        )
        elapsed = time.monotonic() - started
    finally:
        wp.stop(timeout=2)
    # holding a thread per wait would take 1000 × 10 s / 2 threads = 5000 s
    assert elapsed < 120, elapsed


@pytest.mark.integration
def test_kill_9_after_suspend_and_at_resume_completes_once(pg_env: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    w1 = pg_env.start_worker(threads=2)
    handle = tasks.trigger("t-wait", {"seconds": 6, "trace": str(trace)})
    wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.WAITING, timeout=30)
    w1.send_signal(signal.SIGKILL)  # right after the run suspended
    w1.wait()
    w2 = pg_env.start_worker(threads=2)
    # right as it resumes: the step body already ran, so "before" appears a second time
    wait_for(lambda: t.read_trace(trace).count("before") >= 2, timeout=30, interval=0.01)
    w2.send_signal(signal.SIGKILL)
    w2.wait()
    pg_env.start_worker(threads=2)
    run = wait_final(handle.id, timeout=60)
    assert run.status == RunStatus.COMPLETED and run.output == {"n": 7}
    assert t.read_trace(trace).count("step-body") == 1
    assert runs.list(status="EXECUTING").data == []


@pytest.mark.parametrize("by_id", [False, True], ids=["by task", "by id"])
def test_a_batch_of_several_tasks_is_waited_for_with_one_suspension(
        env: Any, worker: Any, tmp_path: Path, by_id: bool):
    trace = tmp_path / "trace"
    run = wait_final(tasks.trigger("t-mixed-batch-parent",
                                   {"trace": str(trace), "by_id": by_id}).id, timeout=60)
    assert run.status == RunStatus.COMPLETED, run.error
    # in item order, each with its task; a task object's output model parses its output
    # (by id, the output model comes from the task this process has registered)
    assert run.output["results"] == [
        ["t-child", True, {"i": 3, "double": 6}, "dict", None],
        ["t-schema", True, {"greeting": "hello ada", "count": 2}, "SchemaOutput", None],
        ["t-child", False, None, "NoneType", "child 4 failed on purpose"],
        ["t-echo", True, {"echo": {"e": 1}}, "dict", None],
    ]
    # one wait: the parent ran its code twice (first execution, then the one resume)
    assert t.read_trace(trace).count("parent-start") == 2
    # the four children are one batch, children of the parent, the echo with its own tag
    echo = next(r for r in runs.list(tag="mixed", limit=1000).data if r.parent_id == run.id)
    siblings = runs.list(batch=echo.batch_id).data
    assert sorted(r.task_identifier for r in siblings) == [
        "t-child", "t-child", "t-echo", "t-schema"]
    assert {r.parent_id for r in siblings} == {run.id}


def test_batch_across_tasks_from_outside_a_task(env: Any, worker: Any):
    from runtime import batch
    from runtime.errors import InvalidTriggerOptionsError, NotInRunError

    handle = batch.trigger([
        {"id": "t-child", "payload": {"i": 5}},
        {"id": "t-echo", "payload": {"x": 2}, "options": {"tags": ["mixed-out"]}},
    ], tags=["mixed-all"])
    assert [h.task_identifier for h in handle.runs] == ["t-child", "t-echo"]
    done = [wait_final(h.id, timeout=30) for h in handle.runs]
    assert [r.output for r in done] == [{"i": 5, "double": 10}, {"echo": {"x": 2}}]
    assert [sorted(r.tags) for r in done] == [["mixed-all"], ["mixed-out"]]  # item's own win
    got = batch.retrieve(handle.batch_id)
    assert (got.run_ids, got.run_count) == (tuple(h.id for h in handle.runs), 2)
    by_task = batch.trigger_by_task([{"task": t.echo, "payload": 1}])
    assert by_task.runs[0].task_identifier == "t-echo"
    with pytest.raises(RunNotFoundError, match="no batch"):
        batch.retrieve("batch_nonesuch")
    for bad in ([{"payload": 1}], [{"id": "t-echo", "extra": 1}], [{"id": ""}],
                "t-echo", [{"task": "t-echo"}], []):
        with pytest.raises(InvalidTriggerOptionsError):
            if bad and isinstance(bad, list) and "task" in bad[0]:
                batch.trigger_by_task(bad)
            else:
                batch.trigger(bad)  # type: ignore[arg-type]
    # the error names the item's keys, never its values (a payload may hold a secret)
    with pytest.raises(InvalidTriggerOptionsError, match="batch item 1: .*'extra'") as err:
        batch.trigger([{"id": "t-echo", "payload": 1},
                       {"id": "t-echo", "payload": {"password": "hunter2-s3cret"}, "extra": 1}])
    assert "hunter2-s3cret" not in str(err.value)
    with pytest.raises(NotInRunError, match="inside a running task"):
        batch.trigger_and_wait([{"id": "t-echo", "payload": 1}])
