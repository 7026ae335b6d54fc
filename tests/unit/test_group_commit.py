"""GroupCommit: concurrent submitters share batches, each gets its own result."""

from __future__ import annotations

import threading
import time

import pytest

from runtime.group_commit import GroupCommit


def test_alone_runs_at_once_in_a_batch_of_one() -> None:
    seen: list[list[int]] = []
    gc: GroupCommit[int, int] = GroupCommit(lambda items: (seen.append(items), items)[1])
    assert gc.submit(7) == 7
    assert seen == [[7]] and gc.batches == 1


def test_callers_arriving_during_a_batch_share_the_next_one() -> None:
    release = threading.Event()
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        if len(sizes) == 1:
            release.wait(5)  # hold the first batch while the others queue up
        return [i * 10 for i in items]

    gc: GroupCommit[int, int] = GroupCommit(run)
    results: dict[int, int] = {}

    def call(i: int) -> None:
        results[i] = gc.submit(i)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    time.sleep(0.05)
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, 9)]
    for th in others:
        th.start()
    time.sleep(0.1)
    release.set()
    for th in [first, *others]:
        th.join(5)
    assert results == {i: i * 10 for i in range(9)}
    assert sizes == [1, 8]  # the eight waiters went as one batch


def test_max_batch_splits_and_every_caller_is_answered() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def run(items: list[int]) -> list[int]:
        sizes.append(len(items))
        gate.wait(5)
        return items

    gc: GroupCommit[int, int] = GroupCommit(run, max_batch=3)
    out: list[int] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        r = gc.submit(i)
        with lock:
            out.append(r)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    for th in threads:
        th.start()
    time.sleep(0.1)
    gate.set()
    for th in threads:
        th.join(5)
    assert sorted(out) == list(range(10))
    assert max(sizes) <= 3 and sum(sizes) == 10


def test_a_failing_batch_raises_in_each_of_its_callers_and_the_next_batch_runs() -> None:
    calls = {"n": 0}

    def run(items: list[int]) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("connection lost")
        return items

    gc: GroupCommit[int, int] = GroupCommit(run)
    with pytest.raises(RuntimeError, match="connection lost"):
        gc.submit(1)
    assert gc.submit(2) == 2  # not stuck busy after the error


def test_an_exception_returned_for_one_item_is_raised_in_that_caller_only() -> None:
    gc: GroupCommit[int, int] = GroupCommit(
        lambda items: [ValueError(f"bad {i}") if i < 0 else i for i in items]
    )
    assert gc.submit(3) == 3
    with pytest.raises(ValueError, match="bad -1"):
        gc.submit(-1)
