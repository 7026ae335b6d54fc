"""``queues``: list, retrieve, pause, resume, override and reset a task's queue.

Trigger.dev v4's ``queues`` API. Each task has its own queue, named by the task's id:

    from runtime import queues

    queues.pause("analyst-agent")            # no new run starts; executing runs finish
    queues.resume("analyst-agent")           # waiting runs start, oldest first
    queues.override_concurrency_limit("introspect-data", 2)   # until reset
    queues.reset_concurrency_limit("introspect-data")         # back to the task's code
    q = queues.retrieve("introspect-data")   # q.running, q.queued, q.paused, q.concurrency_limit

A queue is named by the task id, ``{"type": "task", "name": id}`` (the Node SDK's form) or
its ``id`` (``queue_<task id>``). These are not the RabbitMQ queues (``default``,
``large``) that carry the messages: pausing a task's queue holds that task's runs only.
"""

from __future__ import annotations

import builtins
import getpass
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .bootstrap import get_runtime
from .errors import TaskNotFoundError
from .store import queue_controls
from .task import all_tasks, get_task

ID_PREFIX = "queue_"


@dataclass(frozen=True)
class Queue:
    name: str  # the task id
    running: int  # runs EXECUTING
    queued: int  # runs QUEUED: due, backing off, or waiting for a slot
    paused: bool
    base: int | None  # the task's concurrency_limit in code (None: unlimited)
    override: int | None
    total: int | None = None  # the task's total_concurrency_limit in code, over all keys
    total_override: int | None = None
    overridden_at: datetime | None = None
    overridden_by: str | None = None
    paused_at: datetime | None = None
    paused_by: str | None = None

    @property
    def id(self) -> str:
        return ID_PREFIX + self.name

    @property
    def type(self) -> str:
        return "task"

    @property
    def concurrency_limit(self) -> int | None:
        """The limit runs start under now: the override, else the base."""
        return self.override if self.override is not None else self.base

    @property
    def total_concurrency_limit(self) -> int | None:
        """The cap over all keys together now: the override, else the code's."""
        return self.total_override if self.total_override is not None else self.total

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, **asdict(self),
                "concurrency_limit": self.concurrency_limit,
                "total_concurrency_limit": self.total_concurrency_limit}


def _name(queue: Any) -> str:
    """A task id from any of the accepted forms; TaskNotFoundError if no task has it."""
    if isinstance(queue, Queue):
        name = queue.name
    elif isinstance(queue, dict):
        if queue.get("type", "task") != "task":
            raise TaskNotFoundError(
                f"queue type {queue.get('type')!r} is not supported: each task has its own "
                "queue, named {'type': 'task', 'name': <task id>}"
            )
        name = str(queue.get("name") or "")
    elif isinstance(queue, str):
        name = queue
    else:
        raise TypeError(f"a queue is named by a task id, got {type(queue).__name__}")
    known = _known()
    if name not in known and name.startswith(ID_PREFIX):
        name = name[len(ID_PREFIX):]
    if name not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise TaskNotFoundError(f"no task {name!r} (known tasks: {listed})")
    return name


def _known() -> set[str]:
    """Tasks registered in this process or synced by any worker."""
    synced = {row["id"] for row in get_runtime().store.task_definitions()}
    return synced | set(all_tasks())


def who(via: str) -> str:
    """``via:<user>`` for the record of who paused or overrode a queue."""
    try:
        return f"{via}:{getpass.getuser()}"[:128]
    except Exception:  # no user name in this environment (a bare container)
        return via


def _by(by: str | None) -> str:
    return by[:128] if by else who("python")


def _base(name: str) -> int | None:
    """The per-key limit the workers' code has (its synced definition), else this
    process's."""
    row = get_runtime().store.task_definition(name)
    if row is not None:
        return row["concurrency_limit"]
    task = get_task(name)
    return task.slot_limit if task is not None else None


def list() -> builtins.list[Queue]:  # noqa: A001 - the public name is queues.list
    """Every known task's queue, by name."""
    names = sorted(_known())
    return [_queue(d) for d in queue_controls.describe(get_runtime().store, names)]


def retrieve(queue: Any) -> Queue:
    return _described(_name(queue))


def _described(name: str) -> Queue:
    """The queue of a task already resolved by :func:`_name`."""
    return _queue(queue_controls.describe(get_runtime().store, [name])[0])


def _queue(d: dict[str, Any]) -> Queue:
    d = dict(d)
    task = get_task(d["name"])
    if not d.pop("defined") and task is not None:  # no worker has synced it yet: our code
        d.update(base=task.slot_limit, total=task.total_concurrency_limit)
    return Queue(**d)


def pause(queue: Any, *, by: str | None = None) -> Queue:
    """No new run of the task starts; runs executing finish. Runs triggered meanwhile wait
    (QUEUED, uncharged) and start on resume, oldest first."""
    name = _name(queue)
    queue_controls.set_paused(get_runtime().store, name, True, _by(by))
    return _described(name)


def resume(queue: Any, *, by: str | None = None) -> Queue:
    name = _name(queue)
    queue_controls.set_paused(get_runtime().store, name, False, _by(by))
    return _described(name)


def override_concurrency_limit(queue: Any, limit: int, *, by: str | None = None) -> Queue:
    """Cap the task's runs executing at once at ``limit`` (0 to 100,000) until reset; each
    concurrency key gets ``limit`` slots, as with the limit in code. Lowering it stops no
    run: the extra ones finish, and new ones start as the count drops below it."""
    _check_limit(limit)
    name = _name(queue)
    queue_controls.override_limit(get_runtime().store, name, limit, _by(by))
    return _described(name)


def override_total_concurrency_limit(queue: Any, total: int, *,
                                     by: str | None = None) -> Queue:
    """Cap the task's runs executing over all its concurrency keys together at ``total``
    (0 to 100,000) until reset; each key keeps its own limit within it."""
    _check_limit(total)
    name = _name(queue)
    queue_controls.override_total(get_runtime().store, name, total, _by(by))
    return _described(name)


def _check_limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not (
        0 <= limit <= queue_controls.MAX_CONCURRENCY_LIMIT
    ):
        raise ValueError(
            f"concurrency limit must be an integer from 0 to "
            f"{queue_controls.MAX_CONCURRENCY_LIMIT}, got {limit!r}"
        )


def reset_concurrency_limit(queue: Any) -> Queue:
    """Back to the task's own ``concurrency_limit`` and ``total_concurrency_limit`` (none:
    unlimited)."""
    name = _name(queue)
    queue_controls.reset_limit(get_runtime().store, name, _base(name))
    return _described(name)


class _Queues:
    list = staticmethod(list)
    retrieve = staticmethod(retrieve)
    pause = staticmethod(pause)
    resume = staticmethod(resume)
    override_concurrency_limit = staticmethod(override_concurrency_limit)
    override_total_concurrency_limit = staticmethod(override_total_concurrency_limit)
    reset_concurrency_limit = staticmethod(reset_concurrency_limit)


queues = _Queues()
