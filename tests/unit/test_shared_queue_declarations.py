"""Declaring shared queues (``queue()``) and putting tasks in them: the rules a task author
meets at import time, before anything connects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime import SharedQueue, queue, task
from runtime.settings import Settings
from runtime.shared_queues import forget
from runtime.task import unregister

SETTINGS = Settings(default_queue="default", large_queue="large")


@pytest.fixture
def scratch() -> Iterator[list[str]]:
    """Names declared by the test, forgotten after it (queues and tasks alike)."""
    names: list[str] = []
    yield names
    for name in names:
        forget(name)
        unregister(name)


def test_a_queue_is_declared_once(scratch: list[str]):
    scratch.append("u-q")
    q = queue("u-q", concurrency_limit=3)
    assert isinstance(q, SharedQueue) and (q.name, q.concurrency_limit) == ("u-q", 3)
    assert queue("u-q", concurrency_limit=3) is q  # a module imported twice
    with pytest.raises(ValueError, match="already declared with concurrency_limit=3"):
        queue("u-q", concurrency_limit=4)
    with pytest.raises(ValueError, match="already declared"):
        queue("u-q", concurrency_limit=3, total_concurrency_limit=9)
    scratch.append("u-q-total")
    total = queue("u-q-total", total_concurrency_limit=5)
    assert (total.slot_limit, total.total_concurrency_limit) == (5, 5)  # a total alone
    with pytest.raises(ValueError, match="total_concurrency_limit must be"):
        queue("u-q-total-bad", total_concurrency_limit=0)
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="integer ≥ 1"):
            queue("u-q-bad", concurrency_limit=bad)  # type: ignore[arg-type]
    for bad_name in ("", " x", "a b", "x" * 129, "-lead"):
        with pytest.raises(ValueError, match="queue name"):
            queue(bad_name)


def test_a_task_in_a_shared_queue(scratch: list[str]):
    scratch += ["u-shared", "u-in-a", "u-in-b"]
    q = queue("u-shared", concurrency_limit=2)

    @task(id="u-in-a", queue=q)
    def a(payload: dict) -> dict:
        return payload

    @task(id="u-in-b", queue=q, machine="large-2x")
    def b(payload: dict) -> dict:
        return payload

    assert (a.concurrency_queue, a.slot_limit, a.shared_queue) == ("u-shared", 2, q)
    # the RabbitMQ queue still follows the machine
    assert (a.queue_name(SETTINGS), b.queue_name(SETTINGS)) == ("default", "large")
    defs = [a.definition(SETTINGS), b.definition(SETTINGS)]
    assert [(d["queue"], d["concurrency_queue"], d["concurrency_limit"]) for d in defs] == [
        ("default", "u-shared", 2), ("large", "u-shared", 2)]


def test_a_task_of_its_own_is_as_before(scratch: list[str]):
    scratch += ["u-own", "u-own-broker"]

    @task(id="u-own", concurrency_limit=4)
    def own(payload: dict) -> dict:
        return payload

    @task(id="u-own-broker", queue="reports")  # a string names a RabbitMQ queue, as before
    def broker(payload: dict) -> dict:
        return payload

    assert (own.concurrency_queue, own.slot_limit, own.shared_queue) == ("u-own", 4, None)
    assert "concurrency_queue" not in own.definition(SETTINGS)  # its version is unchanged
    assert (broker.queue_name(SETTINGS), broker.concurrency_queue) == ("reports", "u-own-broker")


def test_what_a_task_author_gets_wrong(scratch: list[str]):
    scratch += ["u-q2", "u-task", "u-clash"]
    q = queue("u-q2", concurrency_limit=1)
    with pytest.raises(ValueError, match="give the limit to queue"):
        task(id="u-task", queue=q, concurrency_limit=3)(lambda p: p)
    with pytest.raises(ValueError, match="give the limit to queue"):
        task(id="u-task", queue=q, total_concurrency_limit=3)(lambda p: p)
    with pytest.raises(ValueError, match="not declared with queue"):
        task(id="u-task", queue=SharedQueue("u-undeclared", 1))(lambda p: p)
    with pytest.raises(TypeError, match="RabbitMQ queue's name or a queue"):
        task(id="u-task", queue=5)(lambda p: p)  # type: ignore[arg-type]
    # queue names and task ids share one namespace, both ways round
    with pytest.raises(ValueError, match="is the name of a shared queue"):
        task(id="u-q2")(lambda p: p)
    task(id="u-clash")(lambda p: p)
    with pytest.raises(ValueError, match="named like a task"):
        queue("u-clash")
