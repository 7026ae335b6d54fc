"""Task definitions: ``task``, ``schema_task`` and the registry a worker serves.

Decorating a function only registers it; nothing connects anywhere until a task is
triggered or a worker boots (one bootstrap builds settings, store and broker).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from . import machines
from .errors import OutputValidationError, PayloadValidationError
from .retry import RetryOptions
from .shared_queues import SharedQueue, get_shared_queue

T = TypeVar("T")
Hook = Callable[..., Any]

_REGISTRY: dict[str, Task[Any]] = {}
_HOOK_FIELDS = ("on_start", "on_success", "on_failure", "on_complete", "cleanup",
                "on_start_attempt", "on_wait", "on_resume", "on_cancel", "catch_error")


@dataclass
class Task(Generic[T]):
    """A task: what to run, where, and with which limits."""

    id: str
    fn: Callable[..., Any]
    machine: str = machines.DEFAULT_MACHINE
    #: a string names the RabbitMQ queue (else the machine's); a ``queue()`` is a shared
    #: concurrency queue whose slots the task's runs take instead of the task's own
    queue: str | SharedQueue | None = None
    retry: RetryOptions = field(default_factory=RetryOptions)
    max_duration: float | None = None
    schema: type[BaseModel] | None = None
    output_schema: type[BaseModel] | None = None
    on_start: Hook | None = None
    on_success: Hook | None = None
    on_failure: Hook | None = None
    on_complete: Hook | None = None
    cleanup: Hook | None = None
    on_start_attempt: Hook | None = None
    on_wait: Hook | None = None
    on_resume: Hook | None = None
    on_cancel: Hook | None = None
    #: after a failed attempt: may skip the retry, move it, or replace the error
    catch_error: Hook | None = None
    #: wraps each attempt, after the global middleware: ``fn(payload, ctx, next)``
    middleware: list[Hook] = field(default_factory=list)
    kind: str = "STANDARD"
    cron: Any = None  # schedules.task: the declarative schedule
    #: at most this many runs of the task execute at once (per concurrency_key); None: no cap
    concurrency_limit: int | None = None
    #: at most this many over all its concurrency keys together (Trigger.dev's "total"
    #: limit, their issue #2617: per-key slots alone let the total grow with the keys)
    total_concurrency_limit: int | None = None

    def __post_init__(self) -> None:
        machines.machine(self.machine)  # validate early with a clear error
        if self.max_duration is not None and self.max_duration < 1:
            raise ValueError("max_duration must be at least 1 second")
        for name in ("concurrency_limit", "total_concurrency_limit"):
            limit = getattr(self, name)
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
            ):
                raise ValueError(f"{name} must be an integer ≥ 1, got {limit!r}")
        if isinstance(self.queue, SharedQueue):
            if self.concurrency_limit is not None or self.total_concurrency_limit is not None:
                raise ValueError(
                    f"task {self.id!r} runs in the shared queue {self.queue.name!r}, whose "
                    "concurrency_limit it takes: give the limit to queue(), not the task"
                )
            if get_shared_queue(self.queue.name) != self.queue:
                raise ValueError(
                    f"queue {self.queue.name!r} of task {self.id!r} was not declared with "
                    "queue(): declare it there, once"
                )
        elif self.queue is not None and not isinstance(self.queue, str):
            raise TypeError(
                "queue is a RabbitMQ queue's name or a queue() for a shared concurrency "
                f"limit, not {type(self.queue).__name__}"
            )
        for name in _HOOK_FIELDS:
            hook = getattr(self, name)
            if hook is not None and not callable(hook):
                raise TypeError(f"{name} must be callable, not {type(hook).__name__}")
        self._takes_ctx = _takes_ctx(self.fn)

    @property
    def shared_queue(self) -> SharedQueue | None:
        return self.queue if isinstance(self.queue, SharedQueue) else None

    @property
    def concurrency_queue(self) -> str:
        """The queue whose slots its runs take: the shared queue's name, else its id."""
        shared = self.shared_queue
        return shared.name if shared is not None else self.id

    @property
    def slot_limit(self) -> int | None:
        """The per-key limit its runs carry: its shared queue's, else its own (a total
        alone caps each key at the total too)."""
        shared = self.shared_queue
        if shared is not None:
            return shared.slot_limit
        return self.concurrency_limit or self.total_concurrency_limit

    # -- where it runs ----------------------------------------------------------------
    @property
    def broker_queue(self) -> str | None:
        """The RabbitMQ queue it names itself, if any (else its machine's)."""
        return self.queue if isinstance(self.queue, str) else None

    def queue_name(self, settings: Any) -> str:
        return self.broker_queue or machines.queue_for(
            self.machine, settings.default_queue, settings.large_queue
        )

    def definition(self, settings: Any) -> dict[str, Any]:
        """The row synced to ``task_definitions`` so producers need not import task code."""
        body = {
            "id": self.id,
            "queue": self.queue_name(settings),
            "machine": self.machine,
            "retry": self.retry.resolved(settings),
            "max_duration": self.max_duration
            if self.max_duration is not None
            else (settings.default_max_duration or None),
            "payload_schema": self.schema.model_json_schema() if self.schema else None,
            "kind": self.kind,
            "module": getattr(self.fn, "__module__", None),
            "concurrency_limit": self.slot_limit,
            "total_concurrency_limit": self.total_concurrency_limit,
        }
        if self.shared_queue is not None:  # (only then: other tasks' versions stay as they were)
            body["concurrency_queue"] = self.concurrency_queue
        body["version"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        return body

    # -- payload and output -----------------------------------------------------------
    def parse_payload(self, payload: Any) -> Any:
        if self.schema is None or isinstance(payload, self.schema):
            return payload
        try:
            return self.schema.model_validate(payload)
        except ValidationError as exc:
            raise PayloadValidationError(
                self.id,
                [
                    {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                    for e in exc.errors(include_input=False, include_url=False)
                ],
            ) from None

    def parse_output(self, output: Any) -> Any:
        """Typed output for a parent that awaited this task."""
        if self.output_schema is None or output is None:
            return output
        return self.output_schema.model_validate(output)

    def check_output(self, output: Any) -> Any:
        if self.output_schema is None or isinstance(output, self.output_schema):
            return output
        try:
            return self.output_schema.model_validate(output)
        except ValidationError as exc:
            raise OutputValidationError(
                f"task {self.id!r} returned invalid output: {exc}"
            ) from None

    def call(self, payload: Any, ctx: Any) -> Any:
        return self.fn(payload, ctx) if self._takes_ctx else self.fn(payload)

    # -- triggering (delegates keep this module free of store code) ---------------------
    def trigger(self, payload: Any = None, **options: Any) -> Any:
        from .trigger import trigger_task

        return trigger_task(self, payload, **options)

    def batch_trigger(self, items: list[dict[str, Any]], **options: Any) -> Any:
        from .trigger import batch_trigger_task

        return batch_trigger_task(self, items, **options)

    def trigger_and_wait(self, payload: Any = None, **options: Any) -> Any:
        from .waits import trigger_and_wait

        return trigger_and_wait(self, payload, **options)

    def batch_trigger_and_wait(self, items: list[dict[str, Any]], **options: Any) -> Any:
        from .waits import batch_trigger_and_wait

        return batch_trigger_and_wait(self, items, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly (unit tests of task code)."""
        return self.fn(*args, **kwargs)


def _takes_ctx(fn: Callable[..., Any]) -> bool:
    try:
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


def _output_model(fn: Callable[..., Any]) -> type[BaseModel] | None:
    try:
        ann = inspect.get_annotations(fn, eval_str=True).get("return")
    except Exception:
        return None
    return ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None


def register(t: Task[Any]) -> Task[Any]:
    existing = _REGISTRY.get(t.id)
    if (
        existing is not None
        and existing.fn is not t.fn
        and (
            getattr(existing.fn, "__qualname__", None) != getattr(t.fn, "__qualname__", None)
            or getattr(existing.fn, "__module__", None) != getattr(t.fn, "__module__", None)
        )
    ):
        raise ValueError(f"task id {t.id!r} is already defined by {existing.fn!r}")
    if get_shared_queue(t.id) is not None:
        raise ValueError(
            f"task id {t.id!r} is the name of a shared queue: a task's own queue has its "
            "id, so the task needs another"
        )
    _REGISTRY[t.id] = t
    return t


def task(
    id: str,
    *,
    machine: str = machines.DEFAULT_MACHINE,
    queue: str | SharedQueue | None = None,
    retry: RetryOptions | None = None,
    max_duration: float | None = None,
    concurrency_limit: int | None = None,
    total_concurrency_limit: int | None = None,
    on_start: Hook | None = None,
    on_success: Hook | None = None,
    on_failure: Hook | None = None,
    on_complete: Hook | None = None,
    cleanup: Hook | None = None,
    on_start_attempt: Hook | None = None,
    on_wait: Hook | None = None,
    on_resume: Hook | None = None,
    on_cancel: Hook | None = None,
    catch_error: Hook | None = None,
    middleware: Hook | list[Hook] | None = None,
) -> Callable[[Callable[..., Any]], Task[Any]]:
    """Declare a task. ``fn(payload)`` or ``fn(payload, ctx)``; returns JSON-able output."""

    def wrap(fn: Callable[..., Any]) -> Task[Any]:
        return register(
            Task(
                id=id,
                fn=fn,
                machine=machine,
                queue=queue,
                retry=retry or RetryOptions(),
                max_duration=max_duration,
                concurrency_limit=concurrency_limit,
                total_concurrency_limit=total_concurrency_limit,
                on_start=on_start,
                on_success=on_success,
                on_failure=on_failure,
                on_complete=on_complete,
                cleanup=cleanup,
                on_start_attempt=on_start_attempt,
                on_wait=on_wait,
                on_resume=on_resume,
                on_cancel=on_cancel,
                catch_error=catch_error,
                middleware=_middleware_list(middleware),
                output_schema=_output_model(fn),
            )
        )

    return wrap


def _middleware_list(middleware: Hook | list[Hook] | None) -> list[Hook]:
    items = [] if middleware is None else (
        list(middleware) if isinstance(middleware, list | tuple) else [middleware]
    )
    for fn in items:
        if not callable(fn):
            raise TypeError(f"middleware must be callable, not {type(fn).__name__}")
    return items


def schema_task(
    id: str,
    *,
    schema: type[BaseModel],
    output_schema: type[BaseModel] | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Task[Any]]:
    """A task whose payload is validated by a pydantic model: at trigger time when
    triggered through the task object, and always before the run (never retried)."""

    def wrap(fn: Callable[..., Any]) -> Task[Any]:
        t = task(id, **options)(fn)
        t.schema = schema
        t.output_schema = output_schema or t.output_schema
        return t

    return wrap


def get_task(task_id: str) -> Task[Any] | None:
    return _REGISTRY.get(task_id)


def all_tasks() -> dict[str, Task[Any]]:
    return dict(_REGISTRY)


def unregister(task_id: str) -> None:
    """For tests that define throwaway tasks."""
    _REGISTRY.pop(task_id, None)
