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
from collections.abc import Iterable, Mapping
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


def local_broker_queues(settings: Any) -> set[str]:
    """The RabbitMQ queues this process knows without the store: the default and large
    queue and its tasks' queues (also what a shared ``queue()`` may not be named)."""
    names = {settings.default_queue, settings.large_queue}
    names.update(task.queue_name(settings) for task in all_tasks().values())
    return names


def declared_broker_queues(store: Any, settings: Any,
                           definitions: Iterable[Mapping[str, Any]] | None = None
                           ) -> frozenset[str]:
    """Every RabbitMQ queue name declared now (read from the store, not cached;
    ``definitions``: the task definitions, if the caller has read them already)."""
    names = local_broker_queues(settings)
    if definitions is None:
        definitions = store.task_definitions()
    names.update(d["queue"] for d in definitions if d["queue"])
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


def release(rt: Any, limit: int, also_declared: Iterable[str] = (),
            publish: Any = None) -> int:
    """Release up to ``limit`` runs waiting for a queue that is declared now.
    ``also_declared``: names a worker consumes that its presence row may not show yet.
    ``publish`` (a publisher's): sends the released QUEUED runs' messages at once, rather
    than leaving them to a timer loop's publish step."""
    from .trigger import shared_queue_named  # (trigger imports this module)

    store = rt.store
    names = store.pending_queue_names()
    if not names:
        return 0
    definitions = {d["id"]: dict(d) for d in store.task_definitions()}
    broker = declared_broker_queues(store, rt.settings, definitions.values())
    broker |= set(also_declared)
    # a name is a shared queue's by the trigger's own rule (the default and large queues
    # are RabbitMQ's whatever a queue() is named), else a RabbitMQ queue's if declared
    shared = {n: q for n in names if (q := shared_queue_named(rt, n)) is not None}
    declared = sorted(n for n in names if n in shared or n in broker)
    # (a run whose task no worker has registered yet is not read: it waits for that too)
    waiting = store.runs_pending_queue(declared, limit) if declared else []
    groups: dict[tuple[str, str], list[str]] = {}
    for run in waiting:
        groups.setdefault((run["task_identifier"], run["pending_queue"]), []).append(run["id"])
    released = []
    for (task_id, name), run_ids in groups.items():
        if task_id in definitions:  # (else deleted meanwhile)
            released += store.release_pending_queue(run_ids, name, definitions[task_id],
                                                    shared.get(name))
    # a DELAYED one is the timer's to promote
    due = [(r["id"], r["queue"]) for r in released if r["status"] == RunStatus.QUEUED]
    if due and publish is not None:
        store.mark_published(publish(due))
    if released:
        log.info("released %d runs waiting for their queue to be declared", len(released),
                 extra={"action": "pending_queue_released", "runs": len(released)})
    return len(released)
