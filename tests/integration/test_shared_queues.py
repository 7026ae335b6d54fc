"""A concurrency queue shared by several tasks (``queue()``, runtime/shared_queues.py), on
both tiers with a real worker: its limit counts the runs of every task in it, per key; ops
hold it by its name; producers without the task code put runs in it from the synced
definitions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from runtime import RunStatus, get_runtime, queues, runs, tasks
from runtime.errors import SharedQueueMemberError, TaskNotFoundError
from runtime.task import _REGISTRY
from tests import tasks as t
from tests.helpers import wait_final, wait_for
from tests.integration.test_runtime import _most_at_once


def _run_all(handles: list[Any]) -> list[Any]:
    done = [wait_final(h.id, timeout=60) for h in handles]
    assert [r.status for r in done] == [RunStatus.COMPLETED] * len(handles)
    return done


def test_the_tasks_of_a_shared_queue_share_its_limit(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    # 3 runs of each task, each alone within its own task's limit (none): the queue's one
    # slot makes them take turns, across the two tasks and the two RabbitMQ queues
    handles = [
        tasks.trigger(task_id, {"trace": str(trace), "seconds": 0.3})
        for _ in range(3) for task_id in ("t-shared-a", "t-shared-b")
    ]
    done = _run_all(handles)
    assert all(r.attempt_count == 1 for r in done)  # waiting for the slot cost no attempt
    lines = t.read_trace(trace)
    assert len(lines) == 12 and _most_at_once(lines) == 1, lines
    # the messages went where each task's machine sends them; the slots are the queue's
    rows = [get_runtime().store.get_run(h.id) for h in handles]
    assert {r["queue"] for r in rows} == {env.queue, env.large_queue}
    assert {r["concurrency_queue"] for r in rows} == {"t-shared"}


def test_each_concurrency_key_has_its_own_slots_in_a_shared_queue(env: Any, worker: Any,
                                                                  tmp_path: Path):
    trace = tmp_path / "trace"
    handles = [
        tasks.trigger(task_id, {"trace": str(trace), "seconds": 0.4, "key": key},
                      concurrency_key=key)
        for key in ("a", "b") for task_id in ("t-shared-a", "t-shared-b")
    ]
    _run_all(handles)
    lines = t.read_trace(trace)
    # one at a time per key over both tasks, the two keys side by side
    assert _most_at_once(lines, "a") == 1 and _most_at_once(lines, "b") == 1, lines
    assert _most_at_once(lines) == 2, lines


def test_ops_hold_a_shared_queue_by_its_name(env: Any, worker: Any, tmp_path: Path):
    q = queues.retrieve("t-shared")
    assert (q.type, q.id, q.tasks, q.shared) == ("custom", "queue_t-shared",
                                                 ("t-shared-a", "t-shared-b"), True)
    assert q.concurrency_limit == 1 and q.base == 1
    # a task in a shared queue has none of its own: retrieve answers the shared one ...
    assert queues.retrieve("t-shared-a").name == "t-shared"
    assert queues.retrieve({"type": "custom", "name": "t-shared"}).name == "t-shared"
    with pytest.raises(TaskNotFoundError, match="shared queue"):
        queues.retrieve({"type": "task", "name": "t-shared"})
    names = [x.name for x in queues.list()]
    assert "t-shared" in names and "t-shared-a" not in names and "t-limited" in names
    # ... but holding it by one task's id would hold the other's runs: refused
    with pytest.raises(SharedQueueMemberError, match="t-shared"):
        queues.pause("t-shared-a")

    trace = tmp_path / "trace"
    queues.pause("t-shared", by="ops:test")
    held = [tasks.trigger(task_id, {"trace": str(trace), "seconds": 0.3})
            for task_id in ("t-shared-a", "t-shared-b", "t-shared-a")]
    wait_for(lambda: all(runs.retrieve(h.id).waiting_for_slot for h in held), timeout=30)
    free = tasks.trigger("t-limited-one", {"seconds": 0.05})  # other queues go on
    assert wait_final(free.id, timeout=30).status == RunStatus.COMPLETED
    time.sleep(1.0)  # a few wake ticks: a paused queue wakes nothing
    assert all(runs.retrieve(h.id).status == RunStatus.QUEUED for h in held)
    q = queues.retrieve("t-shared")
    assert (q.paused, q.queued, q.running) == (True, 3, 0)

    # resumed with room for two: both tasks' runs start, at most two at once
    q = queues.override_concurrency_limit("t-shared", 2, by="ops:test")
    assert (q.base, q.override, q.concurrency_limit) == (1, 2, 2)
    queues.resume("t-shared")
    _run_all(held)
    assert _most_at_once(t.read_trace(trace)) == 2
    q = queues.reset_concurrency_limit("t-shared")
    assert (q.override, q.concurrency_limit) == (None, 1)


def test_a_producer_without_the_task_code_fills_the_shared_queue(
        env: Any, worker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # what a backend without the task modules does: trigger by id from the definitions the
    # worker synced (here the trigger's own lookup hides the two tasks; the in-process
    # worker still has them)
    import runtime.trigger

    wait_for(lambda: get_runtime().store.task_definition("t-shared-b") is not None, timeout=30)
    hidden = {"t-shared-a", "t-shared-b"}
    monkeypatch.setattr(runtime.trigger, "get_task",
                        lambda task_id: None if task_id in hidden else _REGISTRY.get(task_id))
    definition = get_runtime().store.task_definition("t-shared-b")
    assert (definition["concurrency_queue"], definition["concurrency_limit"]) == ("t-shared", 1)
    trace = tmp_path / "trace"
    handles = [tasks.trigger(task_id, {"trace": str(trace), "seconds": 0.3})
               for _ in range(2) for task_id in ("t-shared-a", "t-shared-b")]
    _run_all(handles)
    assert _most_at_once(t.read_trace(trace)) == 1
    store = get_runtime().store
    assert {store.get_run(h.id)["queue"] for h in handles} == {env.queue, env.large_queue}


def test_shared_queues_from_the_cli(env: Any, worker: Any):
    # the CLI has no task code: it knows the shared queue from the synced definitions
    wait_for(lambda: env.cli("queues", "show", "t-shared").returncode == 0, timeout=30)
    line = next(x for x in env.cli("queues", "list").stdout.splitlines()
                if x.startswith("t-shared "))
    assert "limit=1" in line and "shared by t-shared-a, t-shared-b" in line, line
    res = env.cli("queues", "pause", "t-shared-b")
    assert res.returncode == 2 and "name that queue" in res.stderr, res.stderr
    res = env.cli("queues", "override", "t-shared", "3")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert (shown["type"], shown["concurrency_limit"], shown["tasks"]) == (
        "custom", 3, ["t-shared-a", "t-shared-b"])
    assert env.cli("queues", "reset", "t-shared").returncode == 0
    assert queues.retrieve("t-shared").concurrency_limit == 1
