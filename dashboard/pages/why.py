"""One sentence on the run page saying what an unfinished run is waiting for.

Trigger.dev users' most common question about a run that does not start is "why?": a
task no worker has registered, a retry's backoff, a delay, a queue nobody consumes, a
child or a token not done yet (reference: "Runs stuck in QUEUED / DEQUEUED with no
explanation"). Everything needed is in the run row and its waitpoints; this puts it in words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from runtime.statuses import RunStatus


def _aware(value: Any) -> datetime | None:
    # SQLite gives naive datetimes (stored as UTC), Postgres aware ones
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _at(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_state_note(
    run: Mapping[Any, Any],
    waitpoints: Sequence[Mapping[Any, Any]],
    now: datetime,
    hold: Mapping[Any, Any] | None = None,
    total: int | None = None,
) -> str | None:
    """What ``run`` is waiting for, or None when it is final (or nothing is worth saying).
    ``hold`` is ops' hold on its task's queue (a ``queue_controls`` row), if any; ``total``
    its task's total_concurrency_limit."""
    status = RunStatus(run["status"])
    queue = run.get("queue") or "default"
    if status == RunStatus.PENDING_VERSION:
        named = run.get("pending_queue")
        if named:
            return (
                f"Its trigger named queue “{named}”, which no task, worker or queue() "
                "declares (a typo, or its worker is not deployed yet). The run starts once "
                f"one does: a worker consuming it (buster-jobs worker --queues {named}), a "
                f"task declared with queue=\"{named}\", or a shared queue(\"{named}\") in a "
                "worker's task modules. Until then it costs no attempt; cancel it to give up."
            )
        return (
            f"No worker has registered task “{run['task_identifier']}” yet. The run starts "
            "once a worker whose task modules define it is up (BUSTER_TASK_MODULES or the "
            "worker's module arguments)."
        )
    if status == RunStatus.DELAYED:
        due = _aware(run.get("delay_until")) or _aware(run.get("available_at"))
        when = f" until {_at(due)}" if due else ""
        if run.get("debounce_key"):
            cap = _aware(run.get("debounce_until"))
            bound = f", but not past {_at(cap)}" if cap else ""
            return (f"Debounced{when}: each trigger of “{run['task_identifier']}” with key "
                    f"“{run['debounce_key']}” pushes the start later{bound}; then it queues "
                    f"on “{queue}”.")
        return f"Delayed{when} by its trigger; then it queues on “{queue}”."
    if status == RunStatus.QUEUED:
        return _queued(run, queue, now, hold, total)
    if status == RunStatus.WAITING:
        return _waiting(run, waitpoints)
    if status in (RunStatus.EXECUTING, RunStatus.DEQUEUED):
        return _executing(run, now)
    return None


def _queued(
    run: Mapping[Any, Any], queue: str, now: datetime, hold: Mapping[Any, Any] | None,
    total: int | None = None,
) -> str:
    task = run["task_identifier"]
    shared = run.get("concurrency_queue") or task
    # a task's own queue is "task X"; a shared one (queue()) says its name and whose it is
    of = f"task “{task}”" if shared == task else f"shared queue “{shared}”"
    if hold is not None and hold.get("paused"):
        by = f" by {hold['paused_by']}" if hold.get("paused_by") else ""
        at = _aware(hold.get("paused_at"))
        since = f" since {_at(at)}" if at else ""
        which = (f"The queue of task “{task}”" if shared == task
                 else f"The shared queue “{shared}”")
        return (
            f"{which} is paused{by}{since}: no new run "
            f"{'of it' if shared == task else 'in it'} starts. "
            f"This run starts once it is resumed (the Queues page, or buster-jobs queues "
            f"resume {shared}), oldest first; waiting costs it no attempt."
        )
    if run.get("waiting_for_slot"):
        key = run.get("concurrency_key")
        limit = run.get("concurrency_limit")
        how = ""
        if hold is not None and hold.get("concurrency_limit") is not None:
            limit = hold["concurrency_limit"]
            how = f" (a limit overridden by {hold.get('overridden_by') or 'ops'})"
        slots = f"{limit} concurrency slot(s)"
        whose = of + (f" with key “{key}”" if key else "")
        if total is not None:
            return (
                f"Waiting for a concurrency slot of {whose}{how}: at most {limit} run(s) "
                f"per key and {total} over all its keys execute at once, and one of those "
                "is full. It starts when a slot frees (freed slots go to the key with the "
                "fewest runs executing)."
            )
        return (
            f"Waiting for one of the {slots} of {whose}{how}: all are taken by executing "
            "runs. It starts when one frees (a run finishing, retrying, waiting or crashing "
            "frees its slot)."
        )
    due = _aware(run.get("available_at"))
    attempt = int(run.get("attempt_count") or 0)
    if due is not None and due > now:
        what = f"Attempt {attempt + 1} is due" if attempt else "It is due"
        why = " (retry backoff)" if attempt else ""
        text = f"{what} at {_at(due)}{why}; then a worker on “{queue}” starts it."
    else:
        since = _at(due) if due is not None else "its trigger"
        text = (
            f"Waiting for a worker on queue “{queue}” since {since}. If it stays queued, "
            f"check that a worker consumes “{queue}” (buster-jobs worker --queues {queue}) "
            "and the queue's depth on the Queues page."
        )
    expires = _aware(run.get("expires_at"))
    if expires is not None:
        text += f" It expires at {_at(expires)} if no worker has started it by then (ttl)."
    return text


_WAITING_FOR = {
    "DATETIME": "a wait.for/wait.until",
    "RUN": "a child run it triggered and waits for (trigger_and_wait)",
    "BATCH": "a batch of child runs (batch_trigger_and_wait)",
    "MANUAL": "a wait token",
}


def _waiting(run: Mapping[Any, Any], waitpoints: Sequence[Mapping[Any, Any]]) -> str:
    pending = [w for w in waitpoints if w.get("status") == "PENDING"]
    wp = next((w for w in pending if w.get("id") == run.get("waiting_on")), None)
    wp = wp or (pending[-1] if pending else None)
    if wp is None:
        return "Suspended: its waitpoint is complete, so it is about to be queued again."
    kind = str(wp.get("kind"))
    text = f"Suspended on {_WAITING_FOR.get(kind, kind.lower())}, waitpoint {wp['id']}"
    due = _aware(wp.get("due_at"))
    if kind == "BATCH" and wp.get("total") is not None:
        text += f": {wp.get('done') or 0} of {wp['total']} children finished"
    if due is not None:
        text += f"; due at {_at(due)}" if kind == "DATETIME" else f"; times out at {_at(due)}"
    return text + ". No worker is held meanwhile; the run replays from the top when it resumes."


def _executing(run: Mapping[Any, Any], now: datetime) -> str:
    owner = run.get("lease_owner") or "a worker"
    lease = _aware(run.get("lease_expires_at"))
    attempt = int(run.get("attempt_count") or 1)
    if lease is not None and lease < now:
        return (
            f"The lease of {owner} lapsed at {_at(lease)}: it stopped renewing it (killed "
            "or stalled). The timer loop ends this attempt as crashed, then retries the run "
            "or marks it CRASHED."
        )
    text = f"Attempt {attempt} running on {owner}"
    started = _aware(run.get("attempt_started_at"))
    if started is not None:
        text += f" since {_at(started)}"
    if lease is not None:
        text += f"; its lease runs to {_at(lease)} and is renewed while the worker lives"
    return text + "."
