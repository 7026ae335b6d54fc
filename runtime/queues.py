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

A shared queue (``queue("openai", concurrency_limit=5)``, runtime/shared_queues.py) is named
by its name or ``{"type": "custom", "name": ...}``; holding it holds every task in it. A
task in a shared queue has no queue of its own: ``retrieve`` by its id answers the shared
queue, while pause, resume, override and reset want the shared queue named, so that ops
never hold other tasks' runs by naming one task.
"""

from __future__ import annotations

import builtins
import getpass
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from .bootstrap import get_runtime
from .errors import SharedQueueMemberError, TaskNotFoundError
from .shared_queues import get_shared_queue, shared_queues
from .store import queue_controls
from .task import all_tasks, get_task

ID_PREFIX = "queue_"


@dataclass(frozen=True)
class Queue:
    name: str  # the task id, or the shared queue's name
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
    #: the tasks whose runs take its slots (a task's own queue: that task)
    tasks: tuple[str, ...] = ()
    shared: bool = False  # declared with queue(), not a task's own

    @property
    def id(self) -> str:
        return ID_PREFIX + self.name

    @property
    def type(self) -> str:
        """``task`` (a task's own queue) or ``custom`` (a shared one), as Trigger.dev says."""
        return "custom" if self.shared else "task"

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
                "tasks": builtins.list(self.tasks),
                "concurrency_limit": self.concurrency_limit,
                "total_concurrency_limit": self.total_concurrency_limit}


def _name(queue: Any, *, acting: bool = False) -> tuple[str, dict[str, builtins.list[str]]]:
    """A queue's name from any of the accepted forms; TaskNotFoundError if no queue has it.
    ``acting``: about to hold it, so a task in a shared queue is refused, not resolved.
    Returns the name with every queue's tasks (:func:`_members`, read once per call)."""
    kind = None  # a type said with the name: it must match
    if isinstance(queue, Queue):
        name, kind = queue.name, queue.type
    elif isinstance(queue, dict):
        kind = str(queue.get("type", "task"))
        if kind not in ("task", "custom"):
            raise TaskNotFoundError(
                f"queue type {queue.get('type')!r} is not supported: a queue is "
                "{'type': 'task', 'name': <task id>} or {'type': 'custom', 'name': <queue()'s "
                "name>}"
            )
        name = str(queue.get("name") or "")
    elif isinstance(queue, str):
        name = queue
    else:
        raise TypeError(f"a queue is named by a task id or a queue()'s name, got "
                        f"{type(queue).__name__}")
    members = _members()
    if name not in members and name.startswith(ID_PREFIX):
        name = name[len(ID_PREFIX):]
    if name in members:
        shared = name not in members[name]
        if kind is not None and kind != ("custom" if shared else "task"):
            raise TaskNotFoundError(
                f"no {kind} queue {name!r}: {name!r} is "
                + ("a shared queue (type 'custom')" if shared
                   else "a task's own queue (type 'task')")
            )
        return name, members
    tasks = {task: q for q, names in members.items() for task in names}
    if kind != "custom" and name in tasks:  # a task in a shared queue
        if acting:
            raise SharedQueueMemberError(
                f"task {name!r} runs in the shared queue {tasks[name]!r}: name that queue "
                "(holding it holds every task in it)"
            )
        return tasks[name], members
    listed = ", ".join(sorted(members)) or "none"
    raise TaskNotFoundError(f"no queue {name!r} (known queues: {listed})")


def _task_queues() -> dict[str, str]:
    """Each known task's queue: its shared queue's name, else its own id. Tasks registered
    in this process, over what any worker synced."""
    out = {row["id"]: row["concurrency_queue"] or row["id"]
           for row in get_runtime().store.task_definitions()}
    out.update({task_id: t.concurrency_queue for task_id, t in all_tasks().items()})
    return out


def _members() -> dict[str, builtins.list[str]]:
    """Every known queue's name with its tasks: each task's own queue (unless it is in a
    shared one) and every shared queue, declared here or synced by a worker (one no task
    is in is still a queue: triggers choose it)."""
    out: dict[str, builtins.list[str]] = {name: [] for name in shared_queues()}
    out.update({row["name"]: [] for row in get_runtime().store.queue_definitions()})
    for task_id, queue in sorted(_task_queues().items()):
        out.setdefault(queue, []).append(task_id)
    return out


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
    process's: a task's own, or its shared queue's."""
    store = get_runtime().store
    for row in store.queue_definitions():
        if row["name"] == name:
            return row["concurrency_limit"] or row["total_concurrency_limit"]
    for row in store.task_definitions():
        if (row["concurrency_queue"] or row["id"]) == name:
            return row["concurrency_limit"]
    task, shared = get_task(name), get_shared_queue(name)
    if shared is not None:
        return shared.slot_limit
    return task.slot_limit if task is not None else None


def list() -> builtins.list[Queue]:  # noqa: A001 - the public name is queues.list
    """Every known queue, by name: each task's own and each shared one."""
    members = _members()
    names = sorted(members)
    return [_queue(d, members) for d in queue_controls.describe(get_runtime().store, names)]


def retrieve(queue: Any) -> Queue:
    """A queue by name; a task in a shared queue answers that queue."""
    return _described(*_name(queue))


def _described(name: str, members: dict[str, builtins.list[str]]) -> Queue:
    """A queue already resolved by :func:`_name`."""
    return _queue(queue_controls.describe(get_runtime().store, [name])[0], members)


def _queue(d: dict[str, Any], members: dict[str, builtins.list[str]]) -> Queue:
    d = dict(d)
    name = d["name"]
    task, shared = get_task(name), get_shared_queue(name)
    tasks = members.get(name, [])
    if not d.pop("defined"):  # no worker has synced it yet: our code
        if shared is not None:
            d.update(base=shared.slot_limit, total=shared.total_concurrency_limit)
        elif task is not None:
            d.update(base=task.slot_limit, total=task.total_concurrency_limit)
    return Queue(**d, tasks=tuple(tasks), shared=name not in tasks)


def pause(queue: Any, *, by: str | None = None) -> Queue:
    """No new run of the task starts; runs executing finish. Runs triggered meanwhile wait
    (QUEUED, uncharged) and start on resume, oldest first."""
    name, members = _name(queue, acting=True)
    queue_controls.set_paused(get_runtime().store, name, True, _by(by))
    return _described(name, members)


def resume(queue: Any, *, by: str | None = None) -> Queue:
    name, members = _name(queue, acting=True)
    queue_controls.set_paused(get_runtime().store, name, False, _by(by))
    return _described(name, members)


def override_concurrency_limit(queue: Any, limit: int, *, by: str | None = None) -> Queue:
    """Cap the task's runs executing at once at ``limit`` (0 to 100,000) until reset; each
    concurrency key gets ``limit`` slots, as with the limit in code. Lowering it stops no
    run: the extra ones finish, and new ones start as the count drops below it."""
    _check_limit(limit)
    name, members = _name(queue, acting=True)
    queue_controls.override_limit(get_runtime().store, name, limit, _by(by))
    return _described(name, members)


def override_total_concurrency_limit(queue: Any, total: int, *,
                                     by: str | None = None) -> Queue:
    """Cap the task's runs executing over all its concurrency keys together at ``total``
    (0 to 100,000) until reset; each key keeps its own limit within it."""
    _check_limit(total)
    name, members = _name(queue, acting=True)
    queue_controls.override_total(get_runtime().store, name, total, _by(by))
    return _described(name, members)


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
    name, members = _name(queue, acting=True)
    queue_controls.reset_limit(get_runtime().store, name, _base(name))
    return _described(name, members)


class _Queues:
    list = staticmethod(list)
    retrieve = staticmethod(retrieve)
    pause = staticmethod(pause)
    resume = staticmethod(resume)
    override_concurrency_limit = staticmethod(override_concurrency_limit)
    override_total_concurrency_limit = staticmethod(override_total_concurrency_limit)
    reset_concurrency_limit = staticmethod(reset_concurrency_limit)


queues = _Queues()
