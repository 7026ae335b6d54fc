"""``queue()``: a concurrency queue shared by several tasks (Trigger.dev v4's ``queue()``).

Each task has its own queue, named by its id, whose slots only its runs take. A shared queue
is declared once and named by the tasks that share its limit:

    from runtime import queue, task

    openai = queue("openai", concurrency_limit=5)   # 5 runs of these tasks at once, in all

    @task(id="summarize", queue=openai)
    def summarize(payload): ...

    @task(id="classify", queue=openai, machine="large-1x")
    def classify(payload): ...

A run of either task takes one of the queue's slots while it EXECUTES; a
``concurrency_key`` gives each key its own ``concurrency_limit`` slots within the queue, as it
does within a task's queue, and ``total_concurrency_limit`` caps all keys together. Ops
pause, resume and override it like a task's queue (``queues.pause("openai")``). It decides
only how many runs start at once: which RabbitMQ queue carries the messages still comes
from each task's machine (``queue="large"``, a string, names a RabbitMQ queue, as before).

Queue names and task ids share one namespace: the slots are counted by name, so a shared
queue may not be named like a task.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_DEFINED: dict[str, SharedQueue] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class SharedQueue:
    """A concurrency queue declared in code; ``queue()`` makes and registers one."""

    name: str
    #: at most this many runs of its tasks execute at once (per concurrency_key); None: no
    #: cap in code (ops may still pause it or override its limit)
    concurrency_limit: int | None = None
    #: at most this many over all its concurrency keys together (as a task's own); None:
    #: only the per-key limit
    total_concurrency_limit: int | None = None

    @property
    def slot_limit(self) -> int | None:
        """The per-key limit its runs carry: a total alone caps each key at the total too."""
        return self.concurrency_limit or self.total_concurrency_limit

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                "a queue name is 1–128 letters, digits and _ . : / - (starting with a letter "
                f"or digit), got {self.name!r}"
            )
        for field in ("concurrency_limit", "total_concurrency_limit"):
            limit = getattr(self, field)
            if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                      or limit < 1):
                raise ValueError(f"{field} must be an integer ≥ 1, got {limit!r}")


def queue(name: str, *, concurrency_limit: int | None = None,
          total_concurrency_limit: int | None = None) -> SharedQueue:
    """Declare (or look up) the shared queue ``name``. Declaring it again with the same
    limits returns it (a module imported twice); with others is an error, as two limits
    for one queue would depend on import order."""
    from .task import all_tasks

    q = SharedQueue(name, concurrency_limit, total_concurrency_limit)
    with _lock:
        known = _DEFINED.get(name)
        if known is not None:
            if known != q:
                raise ValueError(
                    f"queue {name!r} is already declared with concurrency_limit="
                    f"{known.concurrency_limit}, total_concurrency_limit="
                    f"{known.total_concurrency_limit}"
                )
            return known
        if name in all_tasks():
            raise ValueError(
                f"queue {name!r} is named like a task: a task's own queue has its id, so "
                "a shared queue needs another name"
            )
        _DEFINED[name] = q
        return q


def get_shared_queue(name: str) -> SharedQueue | None:
    return _DEFINED.get(name)


def shared_queues() -> dict[str, SharedQueue]:
    return dict(_DEFINED)


def forget(name: str) -> None:
    """For tests that declare throwaway queues."""
    with _lock:
        _DEFINED.pop(name, None)
