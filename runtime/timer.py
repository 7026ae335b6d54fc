"""The timer loop: everything that must happen at a time rather than on a message.

Each tick: promote due DELAYED runs, fire due waitpoints (wait.for/until, token timeouts),
expire runs whose TTL passed unstarted, end attempts whose lease lapsed (crashed workers),
apply metadata changes children sent to runs no worker holds,
publish QUEUED runs that have no confirmed message (retries, resumes, lost publishes),
requeue WAITING runs whose waitpoint completed without waking them, and record the run
webhooks ended runs owe (runtime/run_webhooks.py; a thread of its own posts them) and
release runs whose queue has been declared (runtime/pending_queues.py). Beside it, a thread
works through bulk actions (runtime/bulk_actions.py). Any
number of loops can run at once: each statement is conditional, and publishing locks its
rows (SKIP LOCKED).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

from . import bulk_actions, pending_queues, run_webhook_endpoints
from .durations import utcnow
from .retry import backoff_ms
from .run_webhooks import Sender, record_pending
from .store import metadata_ops
from .store.retention import prune_pass
from .store.slots import wake_waiting

log = logging.getLogger("buster.timer")


class TimerLoop:
    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.settings = runtime.settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_tick_lag = 0.0
        # lost-message recovery looks for runs published stale_queued_seconds ago: checking
        # every tick would only repeat the same scan
        self._stale_every = min(60.0, self.settings.stale_queued_seconds / 10)
        self._next_stale_check = 0.0
        self._next_retention = 0.0
        self._next_pending_queue = 0.0
        # run webhooks are posted by a thread of their own: a slow endpoint must not hold
        # up delays, waits and leases
        # (idle, it only looks whether any endpoint is in force: see run_webhook_endpoints)
        self.webhooks = Sender(runtime, self.settings.run_webhook_poll_seconds)
        # bulk actions in the background too, a page at a time (runtime/bulk_actions.py)
        self.bulk = bulk_actions.Runner(runtime, self.settings.bulk_action_page_size)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="buster-timer", daemon=True)
        self._thread.start()
        self.webhooks.start()
        self.bulk.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.webhooks.stop()
        self.bulk.stop()

    def run_forever(self) -> None:
        interval = self.settings.timer_interval_seconds
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:
                log.exception("timer tick failed", extra={"action": "timer_error"})
            elapsed = time.monotonic() - started
            self.last_tick_lag = elapsed
            self._stop.wait(max(0.0, interval - elapsed))

    def tick(self) -> dict[str, int]:
        store, n, rt = self.runtime.store, self.settings.timer_batch_size, self.runtime
        steps: dict[str, Any] = {
            "delayed": lambda: store.promote_delayed(n),
            "waitpoints": lambda: store.fire_due_waitpoints(n),
            "expired": lambda: len(store.expire_ttl(n)),
            "crashed": lambda: self._lapsed_leases(n),
            "orphaned_waits": lambda: store.resume_orphaned_waits(n),
            # changes children sent to a parent's or root's metadata that no worker holds
            "metadata_ops": lambda: metadata_ops.apply_queued(
                store, n, self.settings.metadata_max_bytes
            ),
        }
        endpoints = run_webhook_endpoints.current(rt)
        if endpoints:
            # ended runs a run webhook wants -> their deliveries (posted by self.webhooks);
            # a process without endpoints leaves the flags to one that has them
            steps["notify"] = lambda: record_pending(
                store, endpoints, n, self.settings.dashboard_public_url
            )
        if rt.can_publish:
            # before "published": a woken run is published at once, by this step
            steps["slots"] = lambda: wake_waiting(store, n, rt.publisher.publish)
            grace = self.settings.unpublished_grace_seconds
            steps["published"] = lambda: store.publish_due(n, grace, rt.publisher.publish)
            steps["hooks"] = lambda: store.publish_pending_hooks(n, rt.publisher.publish_hooks)
        stale = self._unpublish_stale(n)  # first: what it hands back is published below
        due = store.timer_work()  # one probe: an idle tick runs no step
        counts = {name: step() if name in due else 0 for name, step in steps.items()}
        counts["stale"] = stale
        counts["pending_queue"] = self._pending_queues(n)
        counts["pruned"] = self._retention()
        if any(counts.values()):
            log.debug("timer tick %s", counts, extra={"action": "timer_tick", **counts})
        return counts

    def _unpublish_stale(self, limit: int) -> int:
        if time.monotonic() < self._next_stale_check:
            return 0
        self._next_stale_check = time.monotonic() + self._stale_every
        return int(self.runtime.store.unpublish_stale(self.settings.stale_queued_seconds, limit))

    def _pending_queues(self, limit: int) -> int:
        """Runs waiting for the queue their trigger named, once it is declared: a worker
        consuming it releases them when it starts; this catches a trigger racing that start
        and names declared otherwise (a producer's task synced, a queue())."""
        if time.monotonic() < self._next_pending_queue:
            return 0
        self._next_pending_queue = time.monotonic() + self.settings.pending_queue_check_seconds
        rt = self.runtime
        return pending_queues.release(rt, limit,
                                      publish=rt.publisher.publish if rt.can_publish else None)

    def _retention(self) -> int:
        """One batch of old finished runs when a pass is due; a full batch means more are
        left, so the next tick takes the next one instead of waiting for the interval."""
        days = self.settings.run_retention_days
        if days <= 0 or time.monotonic() < self._next_retention:
            return 0
        deleted, others = prune_pass(
            self.runtime.store, days * 86400.0, self.settings.retention_batch_size, 1
        )
        if others is not None:  # the pass is done
            self._next_retention = time.monotonic() + self.settings.retention_interval_seconds
            if deleted or any(others.values()):
                log.info(
                    "retention: deleted %s runs finished over %s days ago, %s",
                    deleted, days, others,
                    extra={"action": "retention", "runs": deleted, **others},
                )
        return deleted

    def _lapsed_leases(self, limit: int) -> int:
        store, done = self.runtime.store, 0
        for run in store.lapsed_leases(limit):
            policy = run["retry"] or {}
            max_attempts = run["max_attempts"] or policy.get("max_attempts", 1)
            final = run["attempt_count"] >= max_attempts
            delay = backoff_ms(policy, run["attempt_count"]) if policy and not final else 0
            if store.crash_attempt(
                run, final=final, retry_at=utcnow() + timedelta(milliseconds=delay)
            ):
                done += 1
                log.warning(
                    "run %s attempt %s lost its worker %s: %s",
                    run["id"],
                    run["attempt_count"],
                    run["lease_owner"],
                    "CRASHED" if final else "requeued",
                    extra={"run_id": run["id"], "action": "lease_lapsed"},
                )
        return done
