"""A trigger naming a queue nothing declared (runtime/pending_queues.py): the run waits in
PENDING_VERSION, as in Trigger.dev v4, instead of going to a RabbitMQ queue no worker
consumes, and starts once a worker, a task or a queue() declares the name."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from runtime import RunStatus, get_runtime, pending_queues, queue, runs, tasks
from runtime.shared_queues import forget
from runtime.worker import sync_task_definitions
from tests import tasks as t
from tests.conftest import _delete_queues
from tests.helpers import wait_final, wait_for
from tests.integration.test_runtime import _most_at_once

_DEFINITION = {"id": "t-not-deployed-yet", "queue": "default", "machine": "small-1x",
               "version": "v1", "retry": {"max_attempts": 1}, "max_duration": None,
               "concurrency_limit": None, "concurrency_queue": None}


def _release() -> int:
    rt = get_runtime()
    return pending_queues.release(rt, 100)


def test_a_run_on_an_undeclared_queue_waits_for_it(env: Any, worker: Any):
    store = get_runtime().store
    typo = f"{env.queue}-typo"
    h = tasks.trigger("t-traced", {"seconds": 0.05}, queue=typo)
    row = store.get_run(h.id)
    assert (row["status"], row["pending_queue"], row["published_at"]) == (
        RunStatus.PENDING_VERSION, typo, None)
    # its task's queue meanwhile, so a shared queue of that name can still take it
    assert row["queue"] == env.queue
    assert runs.retrieve(h.id).pending_queue == typo
    # the timer loop looks again and again, but nothing declares the name: it stays
    time.sleep(1.0)
    assert _release() == 0
    assert store.get_run(h.id)["status"] == RunStatus.PENDING_VERSION
    # names that are declared go straight through: the worker's queues, a task's queue
    ok = tasks.trigger("t-traced", {"seconds": 0.05}, queue=env.large_queue)
    assert wait_final(ok.id, timeout=30).status == RunStatus.COMPLETED
    assert store.get_run(ok.id)["pending_queue"] is None
    # ... and a replay waits for the same queue as its original
    again = runs.replay(h.id)
    assert store.get_run(again.id)["pending_queue"] == typo
    # waiting costs no attempt and can be given up
    assert runs.cancel(h.id) and runs.cancel(again.id)
    assert runs.retrieve(h.id).attempt_count == 0


def test_a_queue_declared_later_by_a_worker_takes_the_waiting_runs(
        env: Any, worker: Any, tmp_path: Path):
    # a string a producer meant as a shared queue a worker is about to declare
    name = "t-later-shared"
    trace = tmp_path / "trace"
    handles = [tasks.trigger("t-traced", {"trace": str(trace), "seconds": 0.3}, queue=name)
               for _ in range(3)]
    store = get_runtime().store
    assert {store.get_run(h.id)["status"] for h in handles} == {RunStatus.PENDING_VERSION}
    later = queue(name, concurrency_limit=1)
    try:
        sync_task_definitions(get_runtime())  # what a worker declaring it does at start
        done = [wait_final(h.id, timeout=30) for h in handles]
    finally:
        forget(later.name)
    assert [r.status for r in done] == [RunStatus.COMPLETED] * 3
    # in the queue's one slot, one at a time; the messages went to the task's RabbitMQ queue
    assert _most_at_once(t.read_trace(trace)) == 1
    rows = [store.get_run(h.id) for h in handles]
    assert {(r["concurrency_queue"], r["concurrency_limit"], r["queue"], r["pending_queue"])
            for r in rows} == {(name, 1, env.queue, None)}


def test_a_run_waits_for_both_its_task_and_its_queue(env: Any):
    store = get_runtime().store
    h = tasks.trigger("t-not-deployed-yet", {}, queue="t-nowhere", delay="1h")
    row = store.get_run(h.id)
    assert (row["status"], row["pending_queue"]) == (RunStatus.PENDING_VERSION, "t-nowhere")
    # its task's worker comes up, but the queue is still unknown: it keeps waiting
    assert store.release_pending_version([_DEFINITION]) == 0
    assert store.get_run(h.id)["status"] == RunStatus.PENDING_VERSION
    # a worker consuming the queue comes up: released, into that RabbitMQ queue, and still
    # delayed as its trigger asked
    store.upsert_task_definitions([{**_DEFINITION, "updated_at": row["created_at"]}])
    rt = get_runtime()
    assert pending_queues.release(rt, 100, also_declared=["t-nowhere"]) == 1
    row = store.get_run(h.id)
    assert (row["status"], row["queue"], row["pending_queue"], row["task_version"]) == (
        RunStatus.DELAYED, "t-nowhere", None, "v1")
    assert row["available_at"] == row["delay_until"]
    runs.cancel(h.id)


def test_a_delayed_run_waiting_for_its_worker_stays_delayed(env: Any):
    store = get_runtime().store
    h = tasks.trigger("t-not-deployed-yet", {}, delay="1h")
    assert store.release_pending_version([_DEFINITION]) == 1
    row = store.get_run(h.id)
    assert row["status"] == RunStatus.DELAYED and row["available_at"] == row["delay_until"]
    now = tasks.trigger("t-not-deployed-yet", {})
    assert store.release_pending_version([_DEFINITION]) == 1
    assert store.get_run(now.id)["status"] == RunStatus.QUEUED
    runs.cancel(h.id)
    runs.cancel(now.id)


def test_a_worker_consuming_the_queue_starts_the_waiting_run(pg_env: Any):
    later = f"{pg_env.queue}-reports"
    h = tasks.trigger("t-traced", {"seconds": 0.05}, queue=later)
    assert runs.retrieve(h.id).status == RunStatus.PENDING_VERSION
    try:
        pg_env.start_worker(queues=[later], timer=False)  # its start releases the run
        assert wait_final(h.id, timeout=60).status == RunStatus.COMPLETED
        assert get_runtime().store.get_run(h.id)["queue"] == later
        # a worker consumes it now: a later trigger on it is queued at once
        wait_for(lambda: pending_queues.is_declared(get_runtime(), later), timeout=10)
        again = tasks.trigger("t-traced", {"seconds": 0.05}, queue=later)
        assert runs.retrieve(again.id).status != RunStatus.PENDING_VERSION
        assert wait_final(again.id, timeout=60).status == RunStatus.COMPLETED
    finally:
        pg_env.stop_all()
        _delete_queues(pg_env.settings["broker_url"], [later])


@pytest.mark.parametrize("pending", [True, False])
def test_the_cli_says_why_a_run_waits(env: Any, pending: bool):
    task_id = "t-traced" if pending else "t-not-deployed-yet"
    args = ["trigger", task_id] + (["--queue", "t-nowhere"] if pending else [])
    res = env.cli(*args)
    assert res.returncode == 0, res.stderr
    said = ("no task, worker or queue() declares queue 't-nowhere'" if pending
            else "no worker has registered task 't-not-deployed-yet'")
    assert said in res.stderr, res.stderr


def test_a_backlog_on_a_typo_does_not_hide_runs_whose_queue_is_declared(env: Any):
    rt = get_runtime()
    sync_task_definitions(rt)  # what a worker with the task does
    typos = [tasks.trigger("t-traced", {}, queue="t-typo-q") for _ in range(3)]
    later = tasks.trigger("t-traced", {}, queue="t-later-q")
    # the oldest runs wait on the typo; a page of 2 still reaches the declared name's run
    assert pending_queues.release(rt, 2, also_declared=["t-later-q"]) == 1
    assert runs.retrieve(later.id).status == RunStatus.QUEUED
    assert {runs.retrieve(h.id).status for h in typos} == {RunStatus.PENDING_VERSION}
    # a canceled run leaves the names waited for
    for h in typos:
        runs.cancel(h.id)
    assert rt.store.pending_queue_names() == set()
    runs.cancel(later.id)
