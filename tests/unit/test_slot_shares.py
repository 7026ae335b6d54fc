"""How the wake step shares freed slots (runtime/store/slots.py ``shares``; pure function)."""

from __future__ import annotations

from typing import Any

from runtime.store.slots import shares


def _g(key: str, limit: int | None, executing: int, waiting: int, oldest: str,
       task: str = "t", coming: int = 0) -> dict[str, Any]:
    return {"concurrency_queue": task, "concurrency_key": key, "concurrency_limit": limit,
            "executing": executing, "coming": coming, "waiting": waiting, "oldest": oldest}


def test_each_group_gets_what_its_own_limit_leaves_free():
    groups = [_g("a", 2, 1, 5, "run_1"), _g("b", 2, 2, 5, "run_2"), _g("c", 2, 0, 1, "run_3")]
    assert shares(groups, {}, {}, 100) == {("t", "a"): 1, ("t", "c"): 1}


def test_a_total_goes_to_the_least_busy_keys_first_not_the_biggest_backlog():
    # per key 3, total 4; a already runs 2 and has the oldest, biggest backlog
    groups = [_g("a", 3, 2, 100, "run_1"), _g("b", 3, 0, 5, "run_5"), _g("c", 3, 0, 5, "run_7")]
    out = shares(groups, {}, {"t": 4}, 100)
    assert out == {("t", "b"): 1, ("t", "c"): 1}  # 2 free of the total, one each to b and c
    # ties go to the key waiting longest
    out = shares([_g("x", 1, 0, 3, "run_9"), _g("y", 1, 0, 3, "run_2")], {}, {"t": 1}, 100)
    assert out == {("t", "y"): 1}


def test_a_paused_queue_gets_nothing_and_an_override_replaces_the_limit():
    groups = [_g("", 1, 0, 4, "run_1")]
    assert shares(groups, {"t": {"paused": True, "concurrency_limit": None}}, {}, 100) == {}
    held = {"t": {"paused": False, "concurrency_limit": 3}}
    assert shares(groups, held, {}, 100) == {("t", ""): 3}
    # an unlimited task's waiting runs after the hold is lifted: all of them
    assert shares([_g("", None, 0, 4, "run_1")], {}, {}, 100) == {("t", ""): 4}


def test_the_batch_bound_serves_the_longest_waiting_groups_first():
    groups = [_g("a", 5, 0, 5, "run_8", task="t1"), _g("b", 5, 0, 5, "run_1", task="t2")]
    assert shares(groups, {}, {}, 7) == {("t2", "b"): 5, ("t1", "a"): 2}


def test_a_large_total_is_handed_out_a_batch_at_a_time_round_robin():
    groups = [_g(k, 50, 0, 50, f"run_{i}") for i, k in enumerate("abc")]
    out = shares(groups, {}, {"t": 100}, 10)
    assert sum(out.values()) == 10
    assert sorted(out.values()) == [3, 3, 4] and out[("t", "a")] == 4  # a waited longest
