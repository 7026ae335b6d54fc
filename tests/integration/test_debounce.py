"""Debounced triggers (runtime/debounce.py): a burst of triggers with one key runs the task
once, after the last of them; on both tiers, with a real worker where a run must execute."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import tests.tasks  # noqa: F401 - registers t-echo and t-traced (DELAYED, not PENDING_VERSION)
from runtime import RunStatus, runs, tasks
from runtime.errors import InvalidTriggerOptionsError
from tests.helpers import wait_final


def _runs_of(task_id: str, tag: str) -> list[Any]:
    return [r for r in runs.list(task=task_id, limit=100) if tag in r.tags]


def test_a_burst_with_one_key_runs_once_after_the_last_trigger(env: Any, worker: Any):
    first_at = time.time()
    handles = []
    for n in range(4):
        handles.append(tasks.trigger("t-echo", {"n": n}, tags=["burst"],
                                     debounce={"key": "user-1", "delay": "0.8s"}))
        time.sleep(0.3)
    last_at = time.time()
    assert len({h.id for h in handles}) == 1
    run = runs.retrieve(handles[0].id)
    assert run.status == RunStatus.DELAYED and run.debounce_key == "user-1"
    # the start moved with each trigger: 0.8 s after the last, not after the first
    assert run.delay_until is not None
    assert run.delay_until.timestamp() >= last_at - 0.3 + 0.8 - 0.05
    done = wait_final(run.id, timeout=30)
    assert done.status == RunStatus.COMPLETED and done.attempt_count == 1
    assert done.output == {"echo": {"n": 0}}  # leading: the first trigger's payload
    assert done.started_at is not None
    assert done.started_at.timestamp() >= first_at + 3 * 0.3 + 0.8 - 0.05
    assert len(_runs_of("t-echo", "burst")) == 1
    # the run has started: the key starts a new run now
    again = tasks.trigger("t-echo", {"n": 9}, tags=["burst"],
                          debounce={"key": "user-1", "delay": "0.1s"})
    assert again.id != run.id
    assert wait_final(again.id).output == {"echo": {"n": 9}}


def test_trailing_takes_the_last_triggers_payload_and_options(env: Any):
    common = {"key": "doc-7", "delay": "1h", "mode": "trailing"}
    a = tasks.trigger("t-echo", {"v": "old"}, tags=["a"], metadata={"m": 1},
                      max_attempts=2, debounce=common)
    b = tasks.trigger("t-echo", {"v": "new"}, tags=["b", "c"], metadata={"m": 2},
                      max_attempts=5, machine="small-2x", debounce=common)
    assert a.id == b.id
    run = runs.retrieve(a.id)
    assert (run.payload, run.tags, run.metadata, run.max_attempts, run.machine) == (
        {"v": "new"}, ["b", "c"], {"m": 2}, 5, "small-2x")
    assert {r.id for r in runs.list(tag="b")} == {a.id} and not list(runs.list(tag="a"))
    # leading (the default) keeps the first trigger's
    c = tasks.trigger("t-echo", {"v": 1}, tags=["lead"], debounce={"key": "k", "delay": "1h"})
    tasks.trigger("t-echo", {"v": 2}, tags=["other"], debounce={"key": "k", "delay": "1h"})
    lead = runs.retrieve(c.id)
    assert (lead.payload, lead.tags) == ({"v": 1}, ["lead"])


def test_max_delay_bounds_the_push_and_keys_are_per_task(env: Any):
    first = tasks.trigger("t-echo", {}, debounce={"key": "k", "delay": "10m",
                                                   "max_delay": "15m"})
    created = runs.retrieve(first.id).created_at
    again = tasks.trigger("t-echo", {}, debounce={"key": "k", "delay": "10m",
                                                   "max_delay": "15m"})
    assert again.id == first.id
    start = runs.retrieve(first.id).delay_until
    assert start is not None
    # pushed, but no further than 15 minutes after the first trigger
    assert start - created <= timedelta(minutes=15, seconds=1)
    assert start - created >= timedelta(minutes=10)
    other_key = tasks.trigger("t-echo", {}, debounce={"key": "k2", "delay": "10m"})
    other_task = tasks.trigger("t-traced", {}, debounce={"key": "k", "delay": "10m"})
    assert len({first.id, other_key.id, other_task.id}) == 3
    # a run canceled while delayed leaves the key free
    runs.cancel(first.id)
    assert tasks.trigger("t-echo", {}, debounce={"key": "k", "delay": "10m"}).id != first.id


def test_an_idempotency_key_wins_over_debounce(env: Any):
    a = tasks.trigger("t-echo", {"n": 1}, idempotency_key="once",
                      debounce={"key": "d", "delay": "1h"})
    b = tasks.trigger("t-echo", {"n": 2}, idempotency_key="once",
                      debounce={"key": "d", "delay": "1h", "mode": "trailing"})
    assert b.id == a.id and b.is_cached
    assert runs.retrieve(a.id).payload == {"n": 1}  # the cached answer pushed nothing
    c = tasks.trigger("t-echo", {"n": 3}, debounce={"key": "d", "delay": "1h"})
    assert c.id == a.id and not c.is_cached


def test_an_idempotency_key_taken_at_the_same_moment_returns_its_run(
    env: Any, monkeypatch: pytest.MonkeyPatch
):
    # the key is taken between the check and the insert (simulated: the check misses it
    # once): the insert meets the key's unique index, and the run holding it is returned
    from runtime import debounce

    holder = tasks.trigger("t-echo", {"n": 1}, idempotency_key="raced", delay="1h")
    real = debounce._idempotent_hit
    calls: list[str] = []

    def late(rt: Any, row: Any) -> Any:
        calls.append(row["id"])
        return None if len(calls) == 1 else real(rt, row)

    monkeypatch.setattr(debounce, "_idempotent_hit", late)
    got = tasks.trigger("t-echo", {"n": 2}, idempotency_key="raced",
                        debounce={"key": "raced", "delay": "1h"})
    assert got.id == holder.id and got.is_cached and len(calls) == 2
    assert len(runs.list(task="t-echo")) == 1


def test_simultaneous_first_triggers_make_one_run(env: Any):
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def one(n: int) -> None:
        try:
            barrier.wait()
            ids.append(tasks.trigger("t-echo", {"n": n}, tags=["race"],
                                     debounce={"key": "race", "delay": "1h"}).id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    assert len(ids) == 6 and len(set(ids)) == 1
    assert len(_runs_of("t-echo", "race")) == 1


@pytest.mark.parametrize(("debounce", "message"), [
    ({"key": ""}, "debounce.key must be a string of 1–512 characters"),
    ({"key": "x" * 513, "delay": 1}, "debounce.key must be a string of 1–512 characters"),
    ({"key": "a"}, "debounce.delay must be a positive duration"),
    ({"key": "a", "delay": "0s"}, "debounce.delay must be a positive duration"),
    ({"key": "a", "delay": "soon"}, "debounce: invalid duration 'soon'"),
    ({"key": "a", "delay": 1, "mode": "both"}, "debounce.mode must be 'leading' or 'trailing'"),
    ({"key": "a", "delay": "5s", "max_delay": "1s"}, "is shorter than its delay"),
    ({"key": "a", "delay": 1, "maxWait": 2}, "unknown debounce field(s): maxWait"),
    ("user-1", "debounce must be a dict"),
])
def test_bad_debounce_options_are_refused_and_make_no_run(env: Any, debounce: Any,
                                                         message: str):
    before = len(runs.list(task="t-echo", limit=100))
    with pytest.raises(InvalidTriggerOptionsError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        tasks.trigger("t-echo", {}, debounce=debounce)
    assert len(runs.list(task="t-echo", limit=100)) == before


def test_debounce_is_refused_where_it_does_not_apply(env: Any):
    d = {"key": "a", "delay": 1}
    with pytest.raises(InvalidTriggerOptionsError, match="debounce applies to trigger"):
        tasks.batch_trigger("t-echo", [{"payload": {}, "options": {"debounce": d}}])
    with pytest.raises(InvalidTriggerOptionsError, match="has its own delay"):
        tasks.trigger("t-echo", {}, delay="5s", debounce=d)
    assert not runs.list(task="t-echo", limit=10)
