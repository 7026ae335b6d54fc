"""``metadata.parent`` and ``metadata.root``: children change their parent's and root's
metadata (Trigger.dev v4's fan-out progress), on both tiers, whether the target waits for
them or keeps executing and writing its own metadata."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import RunStatus, get_runtime, metadata, runs, tags, tasks, wait
from runtime.errors import RunNotFoundError
from tests import metadata_tasks  # noqa: F401 - registers the tasks
from tests.helpers import wait_final, wait_for


def _settled(run_id: str, key: str, value: Any) -> Any:
    """The run once its metadata has every change sent to it: the last children's may be
    applied by the timer loop a moment after the run itself ended."""
    last: list[Any] = []

    def settled() -> Any:
        run = runs.retrieve(run_id)
        last[:] = [run.metadata]
        return run.metadata.get(key) == value and run

    try:
        return wait_for(settled, timeout=20)
    except AssertionError:
        raise AssertionError(f"{key} never became {value}: the document is {last}") from None


def test_children_change_a_waiting_parents_and_the_roots_metadata(env: Any, worker: Any):
    n, k = 6, 5
    handle = tasks.trigger("m-waiting-parent", {"children": n, "increments": k})
    assert wait_final(handle.id, timeout=60).output == {"ok": True}
    run = _settled(handle.id, "done", n * k)
    doc = run.metadata
    # no increment lost between concurrent children; appends all there
    assert doc["done"] == n * k and sorted(doc["children"]) == list(range(n))
    assert doc["root_done"] == 2 * n and doc["from_grandchildren"] == 1
    assert "nobody" not in doc
    # an increment of text is skipped, and only it; a NUL is refused in the child
    assert doc["label"] == "text" and "bad" not in doc
    children = [r for r in runs.list(task="m-child") if r.parent_id == handle.id]
    assert len(children) == n and all(c.metadata.get("refused") for c in children)
    with_grandchild = next(c for c in children if c.output == {"n": 0})
    assert runs.retrieve(with_grandchild.id).metadata["grandchild"] == 0
    # nothing left queued
    wait_for(lambda: not _queued_ops())


def test_an_executing_parent_sees_its_childrens_changes_and_keeps_its_own(
    env: Any, worker: Any
):
    n, k = 4, 10
    handle = tasks.trigger("m-busy-parent", {"children": n, "increments": k})
    run = wait_final(handle.id, timeout=60)
    assert run.status == RunStatus.COMPLETED
    # the children's increments reached the document in the parent's memory, while it ran
    assert run.output["done_seen"] == n * k
    doc = _settled(handle.id, "done", n * k).metadata
    # and its own writes (written whole at each flush) did not undo them, nor they its own
    assert doc["tick"] == run.output["ticks"]


def test_a_resumed_run_does_not_repeat_the_metadata_changes_it_replays(
    env: Any, worker: Any
):
    handle = tasks.trigger("m-own-replay", {})
    token = wait_for(lambda: runs.retrieve(handle.id).metadata.get("token"))
    wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.WAITING)
    wait.complete_token(token, {})
    run = wait_final(handle.id)
    assert run.output == {"visits": 1, "seen": ["before", "after"]}


def test_a_retry_does_not_repeat_the_changes_it_replays(env: Any, worker: Any):
    run = wait_final(tasks.trigger("m-retry-replay", {}).id)
    assert run.status == RunStatus.COMPLETED and run.attempt_count == 2
    assert run.output == {"before": 1, "after": 2}


def test_subscribe_to_run_yields_each_change_until_the_run_ends(env: Any, worker: Any):
    handle = tasks.trigger("m-progress", {"steps": 3, "pause": 0.4})
    seen = list(runs.subscribe_to_run(handle.id, poll_interval=0.05, timeout=30))
    steps = [r.metadata.get("step") for r in seen if r.status == RunStatus.EXECUTING]
    # every step's progress is seen, in order, and the last item is the finished run
    assert [s for i, s in enumerate(steps) if s and (i == 0 or s != steps[i - 1])] == [1, 2, 3]
    assert seen[-1].status == RunStatus.COMPLETED and seen[-1].output == {"steps": 3}
    assert all(a.updated_at <= b.updated_at for a, b in zip(seen, seen[1:], strict=False))
    # a run that does not end in time: TimeoutError; an unknown id: RunNotFoundError
    slow = tasks.trigger("m-progress", {"steps": 1, "pause": 0.1}, delay="1h")
    with pytest.raises(TimeoutError, match="still DELAYED"):
        list(runs.subscribe_to_run(slow.id, poll_interval=0.05, timeout=0.3))
    with pytest.raises(RunNotFoundError):
        next(runs.subscribe_to_run("run_nope"))


def test_a_run_tags_itself(env: Any, worker: Any):
    handle = tasks.trigger("m-tags", {"customer": 7}, tags=["from:trigger"])
    run = wait_final(handle.id)
    expected = ["from:trigger", "customer:7", "found:orders"]
    assert run.output["tags"] == run.output["ctx_tags"] == expected
    assert "at most 10 tags, got 23" in run.output["refused"]  # and none of them added
    assert runs.retrieve(handle.id).tags == expected
    assert [r.id for r in runs.list(tag="found:orders")] == [handle.id]


def test_outside_a_run_parent_and_root_changes_and_tags_do_nothing():
    metadata.parent.increment("x").set("y", 1)
    metadata.root.append("z", 2)
    assert metadata.parent.get("x") is None and metadata.root.current() is None
    assert tags.add("nowhere") == []
    with pytest.raises(AttributeError, match="not a grandparent"):
        metadata.parent.parent.set("x", 1)


def _queued_ops() -> int:
    from sqlalchemy import func, select

    from runtime.store import tables as t

    with get_runtime().store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.run_metadata_ops)).scalar())
