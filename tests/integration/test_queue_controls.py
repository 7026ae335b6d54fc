"""Ops' hold on a task's queue (runtime/queues.py): pause and resume, override and reset the
concurrency limit, on both tiers with a real worker."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from runtime import RunStatus, queues, runs, tasks
from runtime.errors import TaskNotFoundError
from tests import tasks as t
from tests.helpers import wait_final, wait_for
from tests.integration.test_runtime import _most_at_once, check_one_slot_per_key


def _two_runs_per_key(task_id: str, trace: Path, seconds: float) -> list[str]:
    """Two runs each of keys a, b and c, all completed; their trace lines."""
    handles = [
        tasks.trigger(task_id, {"key": key, "trace": str(trace), "seconds": seconds},
                      concurrency_key=key)
        for key in ("a", "b", "c") for _ in range(2)
    ]
    done = [wait_final(h.id, timeout=60) for h in handles]
    assert [r.status for r in done] == [RunStatus.COMPLETED] * 6
    assert all(r.attempt_count == 1 for r in done)
    return t.read_trace(trace)


def test_a_paused_queue_starts_no_run_until_resumed(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    running = tasks.trigger("t-traced", {"trace": str(trace), "seconds": 1.5, "key": "r"})
    wait_for(lambda: runs.retrieve(running.id).status == RunStatus.EXECUTING, timeout=30)
    q = queues.pause("t-traced", by="ops:test")
    assert q.paused and q.paused_by == "ops:test" and q.running == 1
    held = [tasks.trigger("t-traced", {"trace": str(trace), "i": i}) for i in range(3)]
    # each is delivered, finds the queue paused and waits: no thread, no message, no attempt
    wait_for(lambda: all(runs.retrieve(h.id).waiting_for_slot for h in held), timeout=30)
    # the run executing when the queue was paused finishes
    assert wait_final(running.id, timeout=30).status == RunStatus.COMPLETED
    time.sleep(1.0)  # a few wake ticks: a paused queue wakes nothing
    for h in held:
        run = runs.retrieve(h.id)
        assert run.status == RunStatus.QUEUED and run.attempt_count == 0, run
    q = queues.retrieve("t-traced")
    assert (q.paused, q.queued, q.running) == (True, 3, 0)
    assert len(t.read_trace(trace)) == 2  # only the first run's start and end

    q = queues.resume("t-traced")
    assert not q.paused
    done = [wait_final(h.id, timeout=30) for h in held]
    assert [r.status for r in done] == [RunStatus.COMPLETED] * 3
    assert all(r.attempt_count == 1 for r in done)  # waiting cost no attempt
    assert queues.retrieve("t-traced").queued == 0


def test_an_override_caps_an_unlimited_task_until_reset(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "capped"
    q = queues.override_concurrency_limit("t-traced", 1)
    assert (q.base, q.override, q.concurrency_limit) == (None, 1, 1)
    capped = [tasks.trigger("t-traced", {"trace": str(trace), "seconds": 0.4}) for _ in range(4)]
    for h in capped:
        assert wait_final(h.id, timeout=60).status == RunStatus.COMPLETED
    lines = t.read_trace(trace)
    assert len(lines) == 8 and _most_at_once(lines) == 1, lines  # 4 threads, yet one at a time

    q = queues.reset_concurrency_limit("t-traced")
    assert (q.override, q.concurrency_limit) == (None, None)
    free = tmp_path / "free"
    handles = [tasks.trigger("t-traced", {"trace": str(free), "seconds": 0.6}) for _ in range(4)]
    for h in handles:
        assert wait_final(h.id, timeout=60).status == RunStatus.COMPLETED
    assert _most_at_once(t.read_trace(free)) > 1  # unlimited again


def test_an_override_gives_each_concurrency_key_its_slots(env: Any, worker: Any, tmp_path: Path):
    queues.override_concurrency_limit("t-traced", 1)
    check_one_slot_per_key("t-traced", tmp_path / "trace")


def test_an_override_raises_a_tasks_own_limit(env: Any, worker: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    q = queues.override_concurrency_limit("t-limited-one", 3)
    assert (q.base, q.concurrency_limit) == (1, 3)
    handles = [
        tasks.trigger("t-limited-one", {"trace": str(trace), "seconds": 0.6}) for _ in range(6)
    ]
    for h in handles:
        assert wait_final(h.id, timeout=60).status == RunStatus.COMPLETED
    most = _most_at_once(t.read_trace(trace))
    assert 1 < most <= 3, most
    q = queues.reset_concurrency_limit("t-limited-one")
    assert q.concurrency_limit == 1


def test_an_override_to_zero_holds_runs_like_a_pause(env: Any, worker: Any, tmp_path: Path):
    queues.override_concurrency_limit("t-traced", 0)
    h = tasks.trigger("t-traced", {"trace": str(tmp_path / "trace")})
    wait_for(lambda: runs.retrieve(h.id).waiting_for_slot, timeout=30)
    time.sleep(0.8)
    assert runs.retrieve(h.id).status == RunStatus.QUEUED
    queues.override_concurrency_limit("t-traced", 1)
    assert wait_final(h.id, timeout=30).status == RunStatus.COMPLETED


def test_queues_name_validation_and_listing(env: Any):
    with pytest.raises(TaskNotFoundError, match="no-such-task"):
        queues.pause("no-such-task")
    with pytest.raises(TaskNotFoundError, match="not supported"):
        queues.retrieve({"type": "worker", "name": "t-traced"})
    with pytest.raises(TaskNotFoundError, match="a task's own queue"):
        queues.retrieve({"type": "custom", "name": "t-traced"})
    for bad in (-1, 100_001, "2", True, 1.5):
        with pytest.raises(ValueError, match="0 to 100000"):
            queues.override_concurrency_limit("t-traced", bad)  # type: ignore[arg-type]
    assert queues.retrieve({"type": "task", "name": "t-traced"}).name == "t-traced"
    assert queues.retrieve("queue_t-traced").id == "queue_t-traced"
    names = [q.name for q in queues.list()]
    assert "t-traced" in names and "t-limited" in names
    q = queues.retrieve("t-limited-total")
    assert (q.base, q.total, q.concurrency_limit) == (1, 2, 1)
    # a hold on nothing is no row: resume and reset of an unheld queue are no-ops
    q = queues.resume("t-traced")
    assert not q.paused and q.override is None
    queues.pause("t-traced")
    queues.override_concurrency_limit("t-traced", 4)
    q = queues.resume("t-traced")  # keeps the override
    assert (q.paused, q.override) == (False, 4)
    q = queues.reset_concurrency_limit("t-traced")
    assert (q.paused, q.override, q.overridden_by) == (False, None, None)


def test_queues_from_the_cli(env: Any, worker: Any):
    # the worker has synced the task definitions: the CLI knows the tasks without their code
    wait_for(lambda: env.cli("queues", "show", "t-traced").returncode == 0, timeout=30)
    res = env.cli("queues", "pause", "t-traced")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["paused"] is True and shown["paused_by"].startswith("cli")
    assert queues.retrieve("t-traced").paused
    res = env.cli("queues", "override", "t-limited", "5")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["concurrency_limit"] == 5
    listing = env.cli("queues", "list")
    assert listing.returncode == 0, listing.stderr
    line = next(x for x in listing.stdout.splitlines() if x.startswith("t-limited "))
    assert "limit=5 (override; code: 2)" in line, line
    assert "PAUSED" in next(x for x in listing.stdout.splitlines() if x.startswith("t-traced "))
    res = env.cli("queues", "override-total", "t-limited", "7")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["total_concurrency_limit"] == 7
    line = next(x for x in env.cli("queues", "list").stdout.splitlines()
                if x.startswith("t-limited "))
    assert "per key, 7 in all (override; code: ∞)" in line, line
    res = env.cli("queues", "override", "t-limited", "-3")
    assert res.returncode != 0 and "0 to 100000" in res.stderr
    res = env.cli("queues", "pause", "no-such-task")
    assert res.returncode == 2 and "no-such-task" in res.stderr and "t-traced" in res.stderr
    assert env.cli("queues", "resume", "t-traced").returncode == 0
    assert env.cli("queues", "reset", "t-limited").returncode == 0
    assert queues.retrieve("t-limited").concurrency_limit == 2
    assert not queues.retrieve("t-traced").paused


def test_a_waiting_run_is_not_republished_as_lost(env: Any, worker: Any, tmp_path: Path):
    from runtime import get_runtime

    store = get_runtime().store
    queues.pause("t-traced")
    h = tasks.trigger("t-traced", {"trace": str(tmp_path / "trace")})
    wait_for(lambda: runs.retrieve(h.id).waiting_for_slot, timeout=30)
    time.sleep(0.05)
    # the lost-message recovery, with every run counted as stale: it leaves the waiting run
    # alone (it has no message to lose; the wake step publishes it on resume)
    assert store.unpublish_stale(0.0, 100) == 0
    assert store.get_run(h.id)["published_at"] is not None
    queues.resume("t-traced")
    assert wait_final(h.id, timeout=30).status == RunStatus.COMPLETED


def test_a_freed_slot_goes_to_a_waiting_run_without_the_timer(env: Any, tmp_path: Path):
    from runtime import get_runtime
    from runtime.worker import WorkerProcess

    # no timer loop anywhere: only the worker handing on the slot it frees starts the rest
    wp = WorkerProcess(get_runtime(), [env.queue], threads=4, timer=False)
    wp.start()
    try:
        trace = tmp_path / "trace"
        handles = [tasks.trigger("t-limited-one", {"trace": str(trace), "seconds": 0.2})
                   for _ in range(4)]
        done = [wait_final(h.id, timeout=60) for h in handles]
    finally:
        wp.stop(timeout=2)
    assert [r.status for r in done] == [RunStatus.COMPLETED] * 4
    assert _most_at_once(t.read_trace(trace)) == 1


def test_a_total_limit_caps_all_keys_together(env: Any, worker: Any, tmp_path: Path):
    """One slot per key, two over all keys: three keys never run three at once."""
    lines = _two_runs_per_key("t-limited-total", tmp_path / "trace", 0.4)
    assert all(_most_at_once(lines, key) == 1 for key in "abc"), lines
    assert _most_at_once(lines) == 2, lines  # 4 threads and 3 keys: the total holds


def test_a_total_override_caps_an_unlimited_task_over_its_keys(env: Any, worker: Any,
                                                              tmp_path: Path):
    q = queues.override_total_concurrency_limit("t-traced", 2)
    assert (q.total, q.total_override, q.total_concurrency_limit) == (None, 2, 2)
    lines = _two_runs_per_key("t-traced", tmp_path / "trace", 0.4)
    assert _most_at_once(lines) == 2, lines  # 4 threads, 3 keys, no per-key limit

    # raising a task's own total: three keys at once where the code allows two
    q = queues.override_total_concurrency_limit("t-limited-total", 3)
    assert (q.total, q.total_concurrency_limit) == (2, 3)
    lines = _two_runs_per_key("t-limited-total", tmp_path / "raised", 0.6)
    assert all(_most_at_once(lines, key) == 1 for key in "abc"), lines
    assert 2 < _most_at_once(lines) <= 3, lines
    q = queues.reset_concurrency_limit("t-limited-total")
    assert (q.total_override, q.total_concurrency_limit, q.overridden_by) == (None, 2, None)


@pytest.mark.parametrize("way", ["counted", "probed", "probed, then counted",
                                 "many keys seen: counted"])
def test_the_wake_step_counts_slot_groups_without_the_waiting_backlog(
    env: Any, way: str, monkeypatch: pytest.MonkeyPatch
):
    # wake_groups() (what each timer tick and each hand-on reads): on Postgres from the
    # busy-slot index, and each task's waiting runs counted in one pass or, for a task with
    # many in few keys, probed group by group (unless it has too many groups); waiting
    # counted up to the cap. Each way must tell the wake step what usage()'s GROUP BY does.
    from datetime import timedelta

    from sqlalchemy import insert

    from runtime import get_runtime
    from runtime.durations import utcnow
    from runtime.store import slots
    from runtime.store import tables as tb
    from runtime.store.slots import usage, wake_groups

    probes: list[str] = []
    if way != "counted":  # every task has "many" runs waiting
        monkeypatch.setattr(slots, "PROBE_ABOVE", 0)
    if way == "probed, then counted":  # ... and too many groups
        monkeypatch.setattr(slots, "PROBE_GROUPS_AT_MOST", 0)
    if way == "many keys seen: counted":  # ... but their first runs span "many" keys
        monkeypatch.setattr(slots, "PROBE_KEYS_SEEN_AT_MOST", 0)

    store = get_runtime().store
    now = utcnow()
    rows: list[dict[str, Any]] = []

    def add(task: str, key: str, limit: int | None, status: str, n: int,
            waiting: bool = False, later: bool = False) -> None:
        for _ in range(n):
            rows.append({
                "id": f"run_wg{len(rows):04d}", "task_identifier": task,
                "concurrency_queue": task, "status": status,
                "queue": "q", "created_at": now, "updated_at": now, "published_at": now,
                "concurrency_key": key, "concurrency_limit": limit, "waiting_for_slot": waiting,
                "available_at": now + timedelta(hours=1) if later else None})

    add("wg-a", "", 2, "EXECUTING", 2)
    add("wg-a", "", 2, "QUEUED", 1)  # on its way to a claim: its slot is spoken for
    add("wg-a", "", 2, "QUEUED", 1, later=True)  # not due: not on its way yet
    add("wg-a", "", 2, "QUEUED", 5, waiting=True)
    add("wg-a", "x", 2, "EXECUTING", 1)  # no run waiting, but it counts in a.total
    add("wg-b", "", None, "QUEUED", 3, waiting=True)  # an unlimited task ops hold
    add("wg-c", "", 1, "EXECUTING", 1)  # nothing waiting: nothing to wake
    add("wg-d", "k", 3, "QUEUED", 4, waiting=True)
    add("wg-d", "k", 3, "COMPLETED", 2)
    with store.engine.begin() as conn:
        conn.execute(insert(tb.runs), rows)
        if store.is_postgres:  # which statements ran
            from sqlalchemy import event

            @event.listens_for(conn, "before_cursor_execute")
            def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                probes.append("probe" if "concurrency_key > g.k" in statement
                              else "pass" if "min(id) AS oldest" in statement else "")
        got = {(g["concurrency_queue"], g["concurrency_key"]): g
               for g in wake_groups(conn, store.is_postgres, None, 4)}
        of_a = wake_groups(conn, store.is_postgres, "wg-a", 4)
        exact = {(g["concurrency_queue"], g["concurrency_key"]): dict(g)
                 for g in conn.execute(usage(utcnow())).mappings()}
    if store.is_postgres:  # tasks wg-a, wg-b and wg-d have runs waiting, twice over
        assert [p for p in probes if p] == {
            "counted": ["pass", "pass"],
            "probed": ["probe"] * 4,
            "probed, then counted": ["probe"] * 3 + ["pass", "probe", "pass"],
            "many keys seen: counted": ["pass", "pass"],
        }[way]
    fields = ("concurrency_limit", "executing", "coming", "waiting", "oldest")
    assert {k: tuple(g[f] for f in fields) for k, g in got.items()} == {
        ("wg-a", ""): (2, 2, 1, 4, "run_wg0004"),  # 5 waiting, counted up to 4
        ("wg-a", "x"): (2, 1, 0, 0, None),
        ("wg-b", ""): (None, 0, 0, 3, "run_wg0010"),
        ("wg-d", "k"): (3, 0, 0, 4, "run_wg0014"),
    }
    assert {(g["concurrency_queue"], g["concurrency_key"]) for g in of_a} == {
        ("wg-a", ""), ("wg-a", "x")}
    # the same as the exact count, but for the cap and the task with nothing waiting
    assert exact.pop(("wg-c", ""))["waiting"] == 0
    assert exact[("wg-a", "")]["waiting"] == 5
    assert {k: {**g, "waiting": min(int(g["waiting"]), 4)} for k, g in exact.items()} == {
        k: {f: g[f] for f in exact[k]} for k, g in got.items()}
