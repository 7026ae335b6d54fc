"""``batch``: one batch of runs of several tasks (Trigger.dev v4's ``batch`` namespace).

``tasks.batch_trigger(id, items)`` runs one task many times; ``batch`` mixes tasks, and
``*_and_wait`` waits for all of them with one suspension (one waitpoint, one replay record):

    from runtime import batch

    handle = batch.trigger([
        {"id": "introspect-data", "payload": {"data_source": "warehouse"}},
        {"id": "analyst-agent", "payload": {"question": "…"}, "options": {"tags": ["org:7"]}},
    ])
    results = batch.trigger_by_task_and_wait([      # inside a task
        {"task": introspect, "payload": {...}},
        {"task": agent, "payload": {...}},
    ])
    for r in results:                               # in item order
        print(r.task_identifier, r.ok, r.output if r.ok else r.error)
    batch.retrieve(handle.batch_id)                 # its runs, in item order

Items name their task by id (``{"id", "payload", "options"}``) or by the task object
(``{"task", …}``, whose output model parses the result). Options apply per item; those
given to the call apply to every item below the item's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .bootstrap import get_runtime
from .errors import InvalidTriggerOptionsError, RunNotFoundError
from .result import Result
from .task import Task
from .trigger import BatchHandle, trigger_batch

_BY_ID = {"id", "payload", "options"}
_BY_TASK = {"task", "payload", "options"}


def _entries(items: Sequence[Any], key: str,
             options: dict[str, Any]) -> list[tuple[Task[Any] | str, Any, dict[str, Any]]]:
    if isinstance(items, dict | str) or not isinstance(items, Sequence):
        raise InvalidTriggerOptionsError("a batch is a list of items")
    out = []
    allowed = _BY_ID if key == "id" else _BY_TASK
    for n, item in enumerate(items):
        if not isinstance(item, dict) or key not in item or not set(item) <= allowed:
            # the keys, never the values: a payload may hold a secret
            got = (f"keys {', '.join(repr(str(k)) for k in item)}" if isinstance(item, dict)
                   else type(item).__name__)
            raise InvalidTriggerOptionsError(
                f"batch item {n}: expected {{{', '.join(repr(k) for k in sorted(allowed))}}}"
                f" with {key!r}, got {got}"
            )
        task = item[key]
        if key == "id" and (not isinstance(task, str) or not task):
            raise InvalidTriggerOptionsError(f"batch item {n}: 'id' is a task id, got {task!r}")
        if key == "task" and not isinstance(task, Task):
            raise InvalidTriggerOptionsError(
                f"batch item {n}: 'task' is a task object (@task), got {type(task).__name__}")
        opts = item.get("options") or {}
        if not isinstance(opts, dict):
            raise InvalidTriggerOptionsError(f"batch item {n}: 'options' is a dict")
        out.append((task, item.get("payload"), {**options, **opts}))
    return out


def trigger(items: Sequence[dict[str, Any]], *, idempotency_key: Any = None,
            **options: Any) -> BatchHandle:
    """Runs of several tasks as one batch: items ``{"id": task id, "payload", "options"}``.
    A batch ``idempotency_key`` applies per item with the item's index appended."""
    return trigger_batch(_entries(items, "id", options), idempotency_key=idempotency_key)


def trigger_by_task(items: Sequence[dict[str, Any]], *, idempotency_key: Any = None,
                    **options: Any) -> BatchHandle:
    """The same with task objects: items ``{"task": a_task, "payload", "options"}``."""
    return trigger_batch(_entries(items, "task", options), idempotency_key=idempotency_key)


def trigger_and_wait(items: Sequence[dict[str, Any]], **options: Any) -> list[Result[Any]]:
    """Inside a task: trigger the items as children and suspend until every one is final;
    their results in item order (``task_identifier`` says whose)."""
    from .waits import _require_run, wait_batch

    rc = _require_run("batch.trigger_and_wait")
    rc.check_interrupts()
    return wait_batch(rc, _entries(items, "id", options))


def trigger_by_task_and_wait(items: Sequence[dict[str, Any]],
                             **options: Any) -> list[Result[Any]]:
    """:func:`trigger_and_wait` with task objects; each output parsed by its task's
    output model."""
    from .waits import _require_run, wait_batch

    rc = _require_run("batch.trigger_by_task_and_wait")
    rc.check_interrupts()
    return wait_batch(rc, _entries(items, "task", options))


@dataclass(frozen=True)
class Batch:
    """A batch as ``batch.retrieve`` answers it: its runs in item order."""

    id: str
    run_ids: tuple[str, ...]
    created_at: datetime | None
    updated_at: datetime | None

    @property
    def run_count(self) -> int:
        return len(self.run_ids)


def retrieve(batch_id: str) -> Batch:
    """A batch made by any trigger (Python or HTTP) by its id; RunNotFoundError if none."""
    from .store import dashboard as sql

    store = get_runtime().store
    run_ids = sql.batch_run_ids(store, batch_id)
    made = sql.get_batch(store, batch_id)
    if made is not None:
        return Batch(batch_id, tuple(run_ids), made["created_at"], made["updated_at"])
    bounds = sql.batch_bounds(store, batch_id)
    if bounds is None:
        raise RunNotFoundError(f"no batch with id {batch_id!r}")
    return Batch(batch_id, tuple(run_ids), bounds["created_at"], bounds["updated_at"])


class _Batch:
    trigger = staticmethod(trigger)
    trigger_by_task = staticmethod(trigger_by_task)
    trigger_and_wait = staticmethod(trigger_and_wait)
    trigger_by_task_and_wait = staticmethod(trigger_by_task_and_wait)
    retrieve = staticmethod(retrieve)


batch = _Batch()
