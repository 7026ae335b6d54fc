"""A trigger's queue that nothing declared: the run waits in PENDING_VERSION for it.

Trigger.dev v4 declares queues in code, and a trigger naming an unknown one leaves the run
in PENDING_VERSION until a deploy declares it. Here a trigger's ``queue="…"`` is a shared
``queue()`` or a RabbitMQ queue; before this, a name that was neither (a typo, or a worker
not deployed yet) published the run to a RabbitMQ queue no worker consumes, where it sat
QUEUED with nothing to say why. A name is *declared* when it is:

- the default or large queue (``BUSTER_DEFAULT_QUEUE``, ``BUSTER_LARGE_QUEUE``);
- a task's queue: this process's tasks, or any task a worker synced;
- a queue a worker online consumes (``buster-jobs worker --queues …``);
- a shared ``queue()`` (see :func:`runtime.trigger.shared_queue_named`).

Any other name leaves the run PENDING_VERSION with the name in ``runs.pending_queue``. A
worker starting up, and every timer loop every ``pending_queue_check_seconds``, release the
runs whose name has since been declared: a shared queue's name puts the run in its slots,
any other name sends it to that RabbitMQ queue. A run stays cancelable, and its ``ttl``
still expires it, while it waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from .statuses import RunStatus
from .task import all_tasks

log = logging.getLogger("buster.trigger")

# the declared RabbitMQ queue names, by store: re-read when a name is missing from them
# (at most every _REREAD seconds, so a burst of triggers on a typo reads once) and at
# least every _TTL seconds
_TTL = 5.0
_REREAD = 1.0
_CACHE: dict[int, tuple[float, frozenset[str]]] = {}
_warned: set[str] = set()
_lock = threading.Lock()


def forget() -> None:
    _CACHE.clear()


def declared_broker_queues(store: Any, settings: Any) -> frozenset[str]:
    """Every RabbitMQ queue name declared now (read from the store, not cached)."""
    names = {settings.default_queue, settings.large_queue}
    names.update(task.queue_name(settings) for task in all_tasks().values())
    names.update(d["queue"] for d in store.task_definitions() if d["queue"])
    # a worker that stopped cleanly removed its row; one that died counts until it is stale
    for w in store.workers_online(3 * settings.worker_presence_seconds):
        names.update(w["queues"] or ())
    return frozenset(names)


def is_declared(rt: Any, name: str) -> bool:
    """Whether a trigger may send a run to RabbitMQ queue ``name`` now."""
    key = id(rt.store)
    hit = _CACHE.get(key)
    if hit is not None:
        age, known = time.monotonic() - hit[0], name in hit[1]
        if age < (_TTL if known else _REREAD):
            return known
    names = declared_broker_queues(rt.store, rt.settings)
    _CACHE[key] = (time.monotonic(), names)
    if name not in names:
        with _lock:
            first = name not in _warned
            _warned.add(name)
        if first:
            log.warning(
                "queue %r is declared by no task, worker or queue(): runs triggered on it "
                "wait in PENDING_VERSION until one declares it", name,
                extra={"action": "queue_not_declared", "queue": name},
            )
    return name in names


def release(store: Any, settings: Any, limit: int, also_declared: Iterable[str] = (),
            publish: Any = None) -> int:
    """Release up to ``limit`` runs waiting for a queue that is declared now.
    ``also_declared``: names a worker consumes that its presence row may not show yet.
    ``publish`` (a publisher's): sends the released QUEUED runs' messages at once, rather
    than leaving them to a timer loop's publish step."""
    names = store.pending_queue_names()
    if not names:
        return 0
    broker = declared_broker_queues(store, settings) | set(also_declared)
    shared = {q["name"]: q["concurrency_limit"] or q["total_concurrency_limit"]
              for q in store.queue_definitions()}
    declared = sorted(n for n in names if n in broker or n in shared)
    # (a run whose task no worker has registered yet is not read: it waits for that too)
    waiting = store.runs_pending_queue(declared, limit) if declared else []
    if not waiting:
        return 0
    definitions = {d["id"]: dict(d) for d in store.task_definitions()}
    released, due = 0, []
    for run in waiting:
        name, definition = run["pending_queue"], definitions.get(run["task_identifier"])
        if definition is None:  # deleted meanwhile
            continue
        # the default and large queues are RabbitMQ's, whatever a queue() is named
        is_shared = name in shared and name not in (settings.default_queue, settings.large_queue)
        now = store.release_pending_queue(run["id"], name, definition, shared.get(name),
                                          is_shared)
        if now is None:  # canceled meanwhile
            continue
        released += 1
        if now["status"] == RunStatus.QUEUED:  # (a DELAYED one is the timer's to promote)
            due.append((run["id"], now["queue"]))
    if due and publish is not None:
        store.mark_published(publish(due))
    if released:
        log.info("released %d runs waiting for their queue to be declared", released,
                 extra={"action": "pending_queue_released", "runs": released})
    return released
