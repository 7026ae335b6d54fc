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


def _per_key(trace: Path, keys: tuple[str, ...], task_ids: tuple[str, ...]) -> list[str]:
    """A run of each task for each key, all completed; their trace lines."""
    _run_all([
        tasks.trigger(task_id, {"trace": str(trace), "seconds": 0.4, "key": key},
                      concurrency_key=key)
        for key in keys for task_id in task_ids
    ])
    return t.read_trace(trace)


def test_each_concurrency_key_has_its_own_slots_in_a_shared_queue(env: Any, worker: Any,
                                                                  tmp_path: Path):
    lines = _per_key(tmp_path / "trace", ("a", "b"), ("t-shared-a", "t-shared-b"))
    # one at a time per key over both tasks, the two keys side by side
    assert _most_at_once(lines, "a") == 1 and _most_at_once(lines, "b") == 1, lines
    assert _most_at_once(lines) == 2, lines


def test_a_shared_queue_with_a_total_caps_all_its_keys_together(env: Any, worker: Any,
                                                                tmp_path: Path):
    lines = _per_key(tmp_path / "trace", ("a", "b", "c"),
                     ("t-shared-total-a", "t-shared-total-b"))
    # one per key (over both tasks), two over all keys: never three keys at once
    assert all(_most_at_once(lines, key) == 1 for key in ("a", "b", "c")), lines
    assert _most_at_once(lines) == 2, lines
    q = queues.retrieve("t-shared-total")
    assert (q.base, q.total, q.concurrency_limit, q.total_concurrency_limit) == (1, 2, 1, 2)


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
    assert "t-shared-total" in names
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
    # ops find the queue's runs, whatever their task, and only those
    listed = runs.list(concurrency_queue="t-shared", status="QUEUED").data
    assert sorted(r.id for r in listed) == sorted(h.id for h in held)
    assert {r.concurrency_queue for r in listed} == {"t-shared"}
    assert runs.retrieve(free.id).concurrency_queue == "t-limited-one"
    assert runs.bulk_cancel(concurrency_queue="t-shared", dry_run=True).count == 3

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
    # the queue's runs, whatever their task
    h = tasks.trigger("t-shared-b", {}, delay="1h")
    listing = env.cli("runs", "list", "--concurrency-queue", "t-shared")
    assert listing.returncode == 0 and h.id in listing.stdout, listing.stderr
    res = env.cli("runs", "cancel", "--concurrency-queue", "t-shared", "--status", "DELAYED",
                  "--yes")
    assert res.returncode == 0 and json.loads(res.stdout)["run_ids"] == [h.id], res.stdout


def test_a_trigger_chooses_a_shared_queue(env: Any, worker: Any, tmp_path: Path):
    # Trigger.dev's trigger(payload, {queue}): runs of a task with no limit of its own put
    # in the shared queue take its one slot, with the runs of the tasks declared in it
    trace = tmp_path / "trace"
    chosen = [tasks.trigger("t-traced", {"trace": str(trace), "seconds": 0.3}, queue=name)
              for name in ("t-shared", "t-shared", t.shared_one)]
    members = [tasks.trigger("t-shared-a", {"trace": str(trace), "seconds": 0.3})
               for _ in range(2)]
    free_trace = tmp_path / "free"
    free = [tasks.trigger("t-traced", {"trace": str(free_trace), "seconds": 0.6})
            for _ in range(3)]
    _run_all(chosen + members + free)
    assert _most_at_once(t.read_trace(trace)) == 1
    assert _most_at_once(t.read_trace(free_trace)) > 1  # not in the queue: unlimited
    store = get_runtime().store
    rows = [store.get_run(h.id) for h in chosen]
    # the slots are the shared queue's; the messages still went to the task's RabbitMQ queue
    assert {(r["concurrency_queue"], r["concurrency_limit"], r["queue"]) for r in rows} == {
        ("t-shared", 1, env.queue)}
    # a replay takes the same slots as the original
    again = runs.replay(chosen[0].id)
    assert store.get_run(again.id)["concurrency_queue"] == "t-shared"
    assert wait_final(again.id, timeout=30).status == RunStatus.COMPLETED
    # a name no queue() declares is a RabbitMQ queue, as before shared queues
    other = tasks.trigger("t-traced", {}, queue=env.large_queue, delay="1h")
    row = store.get_run(other.id)
    assert (row["queue"], row["concurrency_queue"], row["concurrency_limit"]) == (
        env.large_queue, "t-traced", None)
    runs.cancel(other.id)
    with pytest.raises(ValueError, match="queue must be"):
        tasks.trigger("t-traced", {}, queue=5)


def test_a_producer_chooses_a_queue_only_workers_declared(
        env: Any, worker: Any, monkeypatch: pytest.MonkeyPatch):
    import runtime.trigger

    # this process has not declared the queue: the worker's synced declaration names it
    monkeypatch.setattr(runtime.trigger, "get_shared_queue", lambda name: None)
    runtime.trigger.forget_definitions()
    wait_for(lambda: any(row["name"] == "t-shared"
                         for row in get_runtime().store.queue_definitions()), timeout=30)
    h = tasks.trigger("t-traced", {"seconds": 0.05}, queue="t-shared")
    row = get_runtime().store.get_run(h.id)
    assert (row["concurrency_queue"], row["concurrency_limit"]) == ("t-shared", 1)
    assert wait_final(h.id, timeout=30).status == RunStatus.COMPLETED


def test_a_run_waiting_for_its_worker_keeps_the_queue_its_trigger_chose(env: Any):
    store = get_runtime().store
    h = tasks.trigger("t-not-deployed-yet", {}, queue="t-shared", concurrency_key="org-1")
    row = store.get_run(h.id)
    assert row["status"] == RunStatus.PENDING_VERSION
    assert (row["concurrency_queue"], row["concurrency_limit"]) == ("t-shared", 1)
    # its worker comes up: the run takes the task's RabbitMQ queue, not its slots
    definition = {"id": "t-not-deployed-yet", "queue": "default", "machine": "small-1x",
                  "version": "v1", "retry": {"max_attempts": 1}, "max_duration": None,
                  "concurrency_limit": 9, "concurrency_queue": None}
    assert store.release_pending_version([definition]) == 1
    row = store.get_run(h.id)
    assert (row["status"], row["queue"], row["concurrency_queue"], row["concurrency_limit"],
            row["concurrency_key"]) == (RunStatus.QUEUED, "default", "t-shared", 1, "org-1")
    runs.cancel(h.id)
    # one its trigger left alone takes the task's own queue and limit
    plain = tasks.trigger("t-not-deployed-yet", {})
    assert store.release_pending_version([definition]) == 1
    row = store.get_run(plain.id)
    assert (row["concurrency_queue"], row["concurrency_limit"], row["concurrency_key"]) == (
        "t-not-deployed-yet", 9, "")
    runs.cancel(plain.id)


def test_a_shared_queue_named_like_a_rabbitmq_queue_is_refused_at_sync(env: Any):
    from runtime.shared_queues import forget, queue
    from runtime.worker import sync_task_definitions

    clash = queue(env.large_queue, concurrency_limit=2)
    try:
        with pytest.raises(ValueError, match="named like a RabbitMQ queue"):
            sync_task_definitions(get_runtime())
    finally:
        forget(clash.name)
    assert env.large_queue not in {q["name"] for q in get_runtime().store.queue_definitions()}
    sync_task_definitions(get_runtime())  # renamed (here: gone), the worker starts
