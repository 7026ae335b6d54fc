"""Trigger runs: one row per run (the truth), then a wake-up message per run.

A run row is inserted QUEUED (or DELAYED, or PENDING_VERSION when no worker has registered
the task yet or nothing declared the queue its trigger named) in one statement, even for a
batch of 1,000; the messages follow in one burst.
If a publish is lost the timer loop publishes again (``published_at`` stays empty).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import ids, pending_queues, secrets
from .bootstrap import Runtime, get_runtime
from .context import current
from .durations import parse_duration, resolve_time, utcnow
from .engine_json import check_json_size, text_flaw
from .errors import InvalidTriggerOptionsError, MetadataTooLargeError
from .hooks import GlobalHooks
from .idempotency import IdempotencyKey, create
from .shared_queues import SharedQueue, get_shared_queue
from .statuses import RunStatus
from .task import Task, get_task

_KNOWN_OPTIONS = {
    "idempotency_key",
    "idempotency_key_ttl",
    "delay",
    "ttl",
    "tags",
    "max_attempts",
    "queue",
    "metadata",
    "machine",
    "max_duration",
    "concurrency_key",
    "priority",
    "version",
    "debounce",
}

log = logging.getLogger("buster.trigger")

# Trigger.dev options taken so code written for it runs unchanged, but not enforced here:
# said once per process and option, so nobody believes them in force because the trigger
# went through (so is a concurrency_key on a task without a concurrency_limit).
NOT_ENFORCED_OPTIONS = {
    "priority": "runs start in the order their queue delivers them",
    "version": "a run runs the task version its worker has",
}
_warned_options: set[str] = set()
_warned_lock = threading.Lock()


@dataclass
class RunHandle:
    id: str
    task_identifier: str
    is_cached: bool = False

    def retrieve(self) -> Any:
        from .runs import retrieve

        return retrieve(self.id)


@dataclass
class BatchHandle:
    batch_id: str
    runs: list[RunHandle] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.batch_id


# producers that trigger by id without importing task code read task_definitions; cache it
_DEF_CACHE: dict[tuple[int, str], tuple[float, Any]] = {}  # (store, task id)
_DEF_TTL = 5.0


def forget_definitions() -> None:
    _DEF_CACHE.clear()
    _QUEUE_CACHE.clear()
    pending_queues.forget()


# the shared queues workers declared (queue_definitions), by store: read when a trigger
# names a queue this process does not know, at most every _DEF_TTL seconds
_QUEUE_CACHE: dict[int, tuple[float, dict[str, int | None]]] = {}


def shared_queue_named(rt: Runtime, queue: Any) -> tuple[str, int | None] | None:
    """The shared queue a trigger's ``queue`` option names, as (name, concurrency_limit),
    or None when it names a RabbitMQ queue (or is not given). A ``queue()`` object is one;
    a string is one if this process declared it or a worker synced it, and otherwise the
    name of a RabbitMQ queue, as before shared queues."""
    if queue is None:
        return None
    if isinstance(queue, SharedQueue):
        return queue.name, queue.slot_limit
    if not isinstance(queue, str) or not queue or len(queue) > 128:
        raise InvalidTriggerOptionsError(
            f"queue must be a queue() or a queue's name (1–128 characters), got {queue!r}")
    if queue in (rt.settings.default_queue, rt.settings.large_queue):
        return None
    local = get_shared_queue(queue)
    if local is not None:
        return local.name, local.slot_limit
    key = id(rt.store)
    hit = _QUEUE_CACHE.get(key)
    if hit is None or time.monotonic() - hit[0] >= _DEF_TTL:
        synced = {row["name"]: row["concurrency_limit"] or row["total_concurrency_limit"]
                  for row in rt.store.queue_definitions()}
        hit = _QUEUE_CACHE[key] = (time.monotonic(), synced)
    if queue in hit[1]:
        return queue, hit[1][queue]
    return None


def _definition(rt: Runtime, task_id: str, task: Task[Any] | None) -> dict[str, Any] | None:
    local = task or get_task(task_id)
    if local is not None:
        return local.definition(rt.settings)
    key = (id(rt.store), task_id)
    hit = _DEF_CACHE.get(key)
    if hit and time.monotonic() - hit[0] < _DEF_TTL:
        return hit[1]
    row = rt.store.task_definition(task_id)
    value = dict(row) if row is not None else None
    if value is not None:
        _DEF_CACHE[key] = (time.monotonic(), value)
    return value


def definition_cached(rt: Runtime, task_id: str) -> bool:
    """True when ``build_row`` for this task reads nothing from the database."""
    if get_task(task_id) is not None:
        return True
    hit = _DEF_CACHE.get((id(rt.store), task_id))
    return bool(hit) and time.monotonic() - hit[0] < _DEF_TTL  # type: ignore[index]


def _check_options(options: dict[str, Any]) -> None:
    unknown = set(options) - _KNOWN_OPTIONS
    if unknown:
        raise InvalidTriggerOptionsError(
            f"unknown trigger option(s): {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_KNOWN_OPTIONS))}"
        )
    if options.get("debounce") is not None:  # trigger() takes it off before build_row
        raise InvalidTriggerOptionsError(
            "debounce applies to trigger() only, not to batch triggers, trigger_and_wait "
            "or replays"
        )
    for name, why in NOT_ENFORCED_OPTIONS.items():
        if options.get(name) is not None:
            _say_once(name, why)


def _concurrency(
    task: Task[Any] | None, definition: dict[str, Any] | None, key: Any,
    chosen: tuple[str, int | None] | None = None,
) -> tuple[int | None, str | None]:
    """The run's concurrency limit (the shared queue the trigger chose, else its task's)
    and key ('' for a limited run without one: all such runs share one set of slots)."""
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 256):
        raise InvalidTriggerOptionsError(
            f"concurrency_key must be a string of 1–256 characters, got {key!r}"
        )
    if chosen is not None:
        limit = chosen[1]
    else:
        limit = task.slot_limit if task is not None else (definition or {}).get(
            "concurrency_limit"
        )
    if key is not None and not limit and definition is not None:
        _say_once(
            "concurrency_key",
            f"task {(definition or {}).get('id')!r} has no concurrency_limit, so its runs are "
            "not limited per key (unless ops override its queue's limit)",
        )
    return limit, (key or "") if limit else key


def _say_once(option: str, why: str) -> None:
    if option in _warned_options:
        return
    with _warned_lock:
        if option in _warned_options:
            return
        _warned_options.add(option)
    log.warning("trigger option %r is accepted but not enforced: %s (said once per process)",
                option, why)


def check_tags(rt: Runtime, tags: Any) -> list[str]:
    """A run's tags, deduplicated and checked (count, length, storable text)."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    tags = list(dict.fromkeys(tags))
    s = rt.settings
    if len(tags) > s.max_tags:
        raise InvalidTriggerOptionsError(
            f"a run can have at most {s.max_tags} tags, got {len(tags)}"
        )
    for tag in tags:
        if not isinstance(tag, str) or not 1 <= len(tag) <= s.max_tag_length:
            raise InvalidTriggerOptionsError(
                f"tags must be strings of 1–{s.max_tag_length} characters, got {tag!r}"
            )
        if (flaw := text_flaw(tag)) is not None:
            raise InvalidTriggerOptionsError(f"tag {tag!r} {flaw}")
    return tags


def build_row(
    rt: Runtime,
    task_id: str,
    payload: Any,
    options: dict[str, Any],
    task: Task[Any] | None,
    *,
    batch_id: str | None = None,
    trigger_function: str = "trigger",
    now: Any = None,
) -> dict[str, Any]:
    _check_options(options)
    now = now or utcnow()
    definition = _definition(rt, task_id, task)
    if task is not None and task.schema is not None:
        payload = task.parse_payload(payload)  # validation at trigger time, like schemaTask
    encoded = secrets.encode(payload, rt.encryption_key)
    if task is None or task.schema is None:  # by id: the synced schema names the secrets
        encoded = secrets.encrypt_by_schema(
            encoded, (definition or {}).get("payload_schema"), rt.encryption_key
        )
    check_json_size(encoded, "payload", rt.settings.max_payload_bytes, InvalidTriggerOptionsError)
    meta = secrets.safe_json(options.get("metadata") or {})
    check_json_size(meta, "metadata", rt.settings.metadata_max_bytes, MetadataTooLargeError)
    try:
        delay_until = resolve_time(options.get("delay"))
        ttl = parse_duration(options.get("ttl"))
        key_ttl = parse_duration(options.get("idempotency_key_ttl"))
        max_duration = parse_duration(options.get("max_duration"))
    except ValueError as exc:
        raise InvalidTriggerOptionsError(str(exc)) from None
    max_attempts = options.get("max_attempts")
    if max_attempts is not None and (not isinstance(max_attempts, int) or max_attempts < 1):
        raise InvalidTriggerOptionsError("max_attempts must be an integer ≥ 1")
    machine = options.get("machine") or (definition or {}).get("machine")
    if machine is not None:
        from .machines import PRESETS

        if machine not in PRESETS:
            raise InvalidTriggerOptionsError(f"unknown machine preset {machine!r}")
    # the trigger's queue: a shared queue (its slots, not the task's) or a RabbitMQ queue;
    # a name neither (nothing declared it) holds the run until one is (pending_queues.py)
    chosen = shared_queue_named(rt, options.get("queue"))
    broker_queue = None if chosen is not None else options.get("queue")
    pending_queue = None
    if broker_queue is not None and not pending_queues.is_declared(rt, broker_queue):
        pending_queue, broker_queue = broker_queue, None
    queue = broker_queue or (definition or {}).get("queue")
    if options.get("machine") and not broker_queue and task is not None:
        from .machines import queue_for

        queue = task.broker_queue or queue_for(
            str(machine), rt.settings.default_queue, rt.settings.large_queue
        )
    limit, concurrency_key = _concurrency(task, definition, options.get("concurrency_key"),
                                          chosen)
    status = RunStatus.QUEUED
    if definition is None or pending_queue is not None:
        status = RunStatus.PENDING_VERSION
    elif delay_until is not None and delay_until > now:
        status = RunStatus.DELAYED
    key = options.get("idempotency_key")
    hashed: IdempotencyKey | None = None
    if key is not None:
        hashed = key if isinstance(key, IdempotencyKey) else create(key)
    parent = current()
    run_id = ids.run_id()
    retry = (definition or {}).get("retry")
    row = {
        "id": run_id,
        "task_identifier": task_id,
        "status": status.value,
        "queue": queue,
        "machine": machine,
        "task_version": (definition or {}).get("version"),
        "payload": encoded,
        "metadata": meta,
        "tags": check_tags(rt, options.get("tags")),
        "idempotency_key": str(hashed) if hashed is not None else None,
        "idempotency_key_user": hashed.user_key if hashed is not None else None,
        "idempotency_key_scope": hashed.scope if hashed is not None else None,
        "idempotency_key_expires_at": now
        + timedelta(
            seconds=key_ttl
            if key_ttl is not None
            else rt.settings.default_idempotency_key_ttl_seconds
        )
        if hashed is not None
        else None,
        "parent_id": parent.run_id if parent else None,
        "root_id": (parent.run["root_id"] or parent.run_id) if parent else None,
        "batch_id": batch_id,
        "depth": (parent.run["depth"] + 1) if parent else 0,
        "trigger_function": trigger_function,
        "max_attempts": max_attempts or (retry or {}).get("max_attempts"),
        "retry": retry,
        "max_duration": max_duration or (definition or {}).get("max_duration"),
        "ttl_seconds": ttl,
        "concurrency_queue": chosen[0] if chosen is not None
        else task.concurrency_queue if task is not None
        else (definition or {}).get("concurrency_queue") or task_id,
        "concurrency_key": concurrency_key,
        "concurrency_limit": limit,
        "pending_queue": pending_queue,
        "created_at": now,
        "updated_at": now,
        "available_at": delay_until if status == RunStatus.DELAYED else now,
        "delay_until": delay_until,
        # TTL counts from enqueue: for a delayed run, from its delay
        "expires_at": (
            ((delay_until or now) if status == RunStatus.DELAYED else now) + timedelta(seconds=ttl)
        )
        if ttl
        else None,
    }
    return row


def cached_holder(rt: Runtime, task_id: str, key: str, holder: Any) -> RunHandle | None:
    """The run holding idempotency ``key`` (``holder``, its row, or None) as a cached
    handle while the key is valid; a key whose TTL passed is released, and None returned."""
    if holder is None:
        return None
    expires = holder["idempotency_key_expires_at"]
    if expires is None or expires > utcnow():
        return RunHandle(holder["id"], task_id, is_cached=True)
    rt.store.release_idempotency_key(holder["id"], key)
    return None


def insert_and_publish(
    rt: Runtime, rows: list[dict[str, Any]], *, defer_marks: bool = False
) -> list[RunHandle]:
    """Insert rows (one statement); rows whose idempotency key is taken return the existing
    run (``is_cached``) unless its key expired, in which case the key is released and the
    row inserted after all. ``defer_marks``: mark the published runs through the batched
    marks even when there are several (the HTTP API's group-committed single triggers)."""
    inserted = rt.store.insert_runs(rows)
    handles: dict[str, RunHandle] = {}
    conflicted = [r for r in rows if r["id"] not in inserted]
    for _ in range(3):
        if not conflicted:
            break
        retry_rows = []
        by_task: dict[str, list[dict[str, Any]]] = {}
        for r in conflicted:
            by_task.setdefault(r["task_identifier"], []).append(r)
        for task_id, group in by_task.items():
            existing = rt.store.find_by_idempotency_keys(
                task_id, [r["idempotency_key"] for r in group]
            )
            for r in group:
                held = cached_holder(rt, task_id, r["idempotency_key"],
                                     existing.get(r["idempotency_key"]))
                if held is not None:
                    handles[r["id"]] = held
                else:  # the key was released (expired, or by its holder meanwhile)
                    retry_rows.append(r)
        new = rt.store.insert_runs(retry_rows) if retry_rows else set()
        inserted |= new
        conflicted = [r for r in retry_rows if r["id"] not in new]
    for r in conflicted:
        raise InvalidTriggerOptionsError(
            f"could not resolve idempotency key for task {r['task_identifier']!r}"
        )
    to_publish = [
        (r["id"], r["queue"])
        for r in rows
        if r["id"] in inserted and r["status"] == RunStatus.QUEUED
    ]
    if to_publish and rt.can_publish:
        sent = rt.publisher.publish(to_publish)
        if (len(sent) == 1 or defer_marks) and rt.marks is not None:
            rt.marks.add(sent)  # batched with other triggers' marks: one UPDATE per flush
        else:
            rt.store.mark_published(sent)
    out = []
    for r in rows:
        out.append(handles.get(r["id"]) or RunHandle(r["id"], r["task_identifier"]))
    return out


def trigger_task(task: Task[Any] | str, payload: Any = None, **options: Any) -> RunHandle:
    rt = get_runtime()
    task_obj = task if isinstance(task, Task) else None
    task_id = task.id if isinstance(task, Task) else task
    if options.get("debounce") is not None:
        from .debounce import trigger_debounced

        return trigger_debounced(rt, task_id, payload, options, task_obj)
    row = build_row(rt, task_id, payload, options, task_obj)
    return insert_and_publish(rt, [row])[0]


def batch_trigger_task(
    task: Task[Any] | str,
    items: list[dict[str, Any]],
    *,
    idempotency_key: str | None = None,
    **batch_options: Any,
) -> BatchHandle:
    """Items are ``{"payload": …, "options": {…}}`` (or plain payloads). A batch-level
    idempotency key applies per item with the item's index appended."""
    entries = [(task, *_item(item)) for item in items]
    return trigger_batch(entries, idempotency_key=idempotency_key, **batch_options)


def trigger_batch(
    entries: list[tuple[Task[Any] | str, Any, dict[str, Any]]],
    *,
    idempotency_key: str | None = None,
    **batch_options: Any,
) -> BatchHandle:
    """One batch of runs, each item ``(task or task id, payload, options)``: of one task
    (``batch_trigger``) or of several (``batch.trigger``)."""
    rt = get_runtime()
    if not entries:
        raise InvalidTriggerOptionsError("a batch needs at least one item")
    if len(entries) > rt.settings.max_batch_size:
        raise InvalidTriggerOptionsError(
            f"a batch holds at most {rt.settings.max_batch_size} items, got {len(entries)}"
        )
    batch_id = ids.new_id("batch")
    rows, now = [], utcnow()
    for index, (task, payload, opts) in enumerate(entries):
        task_obj = task if isinstance(task, Task) else None
        task_id = task.id if isinstance(task, Task) else task
        opts = {**batch_options, **opts}
        if idempotency_key is not None and "idempotency_key" not in opts:
            base = (
                idempotency_key.user_key
                if isinstance(idempotency_key, IdempotencyKey)
                else idempotency_key
            )
            opts["idempotency_key"] = create([base, str(index)])
        rows.append(
            build_row(
                rt,
                task_id,
                payload,
                opts,
                task_obj,
                batch_id=batch_id,
                trigger_function="batch_trigger",
                now=now,
            )
        )
    return BatchHandle(batch_id, insert_and_publish(rt, rows))


def _item(item: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(item, dict) and "payload" in item and set(item) <= {"payload", "options"}:
        return item["payload"], dict(item.get("options") or {})
    return item, {}


class _Tasks(GlobalHooks):
    """``tasks.trigger("id", payload)`` etc. for code that does not import the task, and
    the hooks and middleware of every task (``tasks.on_failure(fn)``: see ``hooks``)."""

    @staticmethod
    def trigger(task_id: str, payload: Any = None, **options: Any) -> RunHandle:
        return trigger_task(task_id, payload, **options)

    @staticmethod
    def batch_trigger(task_id: str, items: list[dict[str, Any]], **options: Any) -> BatchHandle:
        return batch_trigger_task(task_id, items, **options)

    @staticmethod
    def trigger_and_wait(task_id: str, payload: Any = None, **options: Any) -> Any:
        from .waits import trigger_and_wait

        return trigger_and_wait(task_id, payload, **options)

    @staticmethod
    def batch_trigger_and_wait(task_id: str, items: list[dict[str, Any]], **options: Any) -> Any:
        from .waits import batch_trigger_and_wait

        return batch_trigger_and_wait(task_id, items, **options)


tasks = _Tasks()
