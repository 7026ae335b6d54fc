"""A worker: Dramatiq consuming the chosen queues, plus the runtime's threads.

``WorkerProcess`` runs in one OS process: it syncs this process's task definitions to the
store (so producers can trigger by id, and PENDING_VERSION runs of these tasks start), then
consumes. ``run_worker`` forks ``processes`` of them and forwards signals; on SIGTERM each
stops consuming, lets running attempts finish within the shutdown timeout, then hands the
rest back without charging an attempt.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import dramatiq

from . import health, pending_queues
from .bootstrap import Runtime
from .broker import declare_run_actor
from .durations import utcnow
from .executor import Executor
from .middleware import RunLifecycle
from .shared_queues import shared_queues
from .task import all_tasks
from .timer import TimerLoop

log = logging.getLogger("buster.worker")


def import_task_modules(modules: Sequence[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                raise SystemExit(f"cannot import task module {name!r}: {exc}") from None
            raise


def check_queue_names(runtime: Runtime) -> None:
    """Refuse a shared ``queue()`` named like a RabbitMQ queue of this deployment: a
    trigger's ``queue="default"`` would mean the RabbitMQ queue, never the shared one."""
    clash = sorted(set(shared_queues()) & pending_queues.local_broker_queues(runtime.settings))
    if clash:
        raise ValueError(
            f"shared queue(s) {', '.join(map(repr, clash))} named like a RabbitMQ queue "
            "(the default or large queue, or a task's queue=\"…\"): rename the queue()")


def sync_task_definitions(runtime: Runtime) -> dict[str, str]:
    """Write this process's task definitions; start PENDING_VERSION runs of these tasks."""
    check_queue_names(runtime)
    defs = []
    for task in all_tasks().values():
        d = task.definition(runtime.settings)
        d["updated_at"] = utcnow()
        defs.append(d)
    runtime.store.upsert_task_definitions(defs)
    runtime.store.upsert_queue_definitions([
        {"name": q.name, "concurrency_limit": q.concurrency_limit,
         "total_concurrency_limit": q.total_concurrency_limit, "updated_at": utcnow()}
        for q in shared_queues().values()])
    queues = {d["id"]: d["queue"] for d in defs}
    released = runtime.store.release_pending_version(defs)
    if released:
        log.info("released %d PENDING_VERSION runs", released, extra={"action": "pending_released"})
    from .schedules import sync_declarative_schedules

    sync_declarative_schedules(runtime)
    return queues


class WorkerProcess:
    def __init__(
        self, runtime: Runtime, queues: Sequence[str], threads: int = 8, timer: bool = True
    ):
        self.runtime = runtime
        self.queues = list(dict.fromkeys(queues))
        self.threads = threads
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.executor = Executor(runtime, self.id)
        self.lifecycle = RunLifecycle(runtime, self.executor)
        self.timer = TimerLoop(runtime) if timer else None
        self.worker: dramatiq.Worker | None = None
        self._presence_stop = threading.Event()
        self._presence: threading.Thread | None = None

    def start(self) -> None:
        rt = self.runtime
        rt.local_consumer = True
        from .logs import install_capture

        install_capture()  # Python logging inside a run lands in the run's log too
        sync_task_definitions(rt)
        rt.broker.add_middleware(self.lifecycle)
        declare_run_actor(rt.broker, self._actor, self.queues, self._hook_actor)
        self.executor.start()
        self.worker = dramatiq.Worker(
            rt.broker, queues=set(self.queues), worker_threads=self.threads, worker_timeout=100
        )
        # one message per thread: a busy pod must not sit on runs another pod could start
        self.worker.queue_prefetch = self.threads
        self.worker.delay_prefetch = 1  # we never publish to delay queues
        self.worker.start()
        # runs whose trigger named a queue this worker consumes, before it was declared
        pending_queues.release(rt, rt.settings.timer_batch_size, also_declared=self.queues,
                               publish=rt.publisher.publish)
        if self.timer is not None:
            self.timer.start()
        self._presence = threading.Thread(
            target=self._presence_loop, daemon=True, name="buster-presence"
        )
        self._presence.start()
        log.info(
            "worker %s consuming %s with %d threads",
            self.id,
            self.queues,
            self.threads,
            extra={"action": "worker_started"},
        )

    def _actor(self, run_id: str) -> None:
        run = self.lifecycle.claimed()
        if run is None or run["id"] != run_id:  # pragma: no cover - middleware guarantees it
            return
        self.lifecycle.record(self.executor.execute(run))

    def _hook_actor(self, run_id: str) -> None:
        """on_complete for a run that ended outside a worker (canceled, expired, crashed)."""
        self.executor.run_detached_on_complete(run_id)

    def _presence_loop(self) -> None:
        row = {
            "id": self.id,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "queues": self.queues,
            "started_at": utcnow(),
        }
        beat = health.Heartbeat.from_settings(self.runtime.settings, "worker", self.id)
        while True:
            stored = True
            try:
                self.runtime.store.worker_seen({**row, "last_seen_at": utcnow()})
            except Exception:
                stored = False
                log.warning("presence heartbeat failed", exc_info=True)
            if beat is not None:  # the liveness file `buster-jobs healthcheck worker` reads
                beat.beat(health.worker_threads(self), store_ok=stored, queues=self.queues)
            if self._presence_stop.wait(self.runtime.settings.worker_presence_seconds):
                if beat is not None:
                    beat.remove()
                return

    def stop(self, timeout: float | None = None) -> None:
        """Stop consuming; let attempts finish for ``timeout`` s; hand back the rest."""
        timeout = self.runtime.settings.shutdown_timeout_seconds if timeout is None else timeout
        if self.worker is None:
            return
        # Worker threads stop taking messages; running ones go on. Consumers stay connected
        # so the running attempts' acks still reach RabbitMQ (Dramatiq's pause() would also
        # pause consumers, which drops the connection and redelivers everything unacked).
        for child in self.worker.workers:
            child.pause()
        deadline = time.monotonic() + timeout
        while self.executor.running_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.executor.running_ids():
            self.executor.shutdown_interrupt()
            grace = time.monotonic() + 2
            while self.executor.running_ids() and time.monotonic() < grace:
                time.sleep(0.05)
            left = self.executor.running_ids()
            if left:  # stuck in a blocking call: hand them back from here
                self.runtime.store.release_runs(self.id, left)
                log.warning(
                    "handed back %d runs still running at shutdown",
                    len(left),
                    extra={"action": "attempt_released"},
                )
        if self.timer is not None:
            self.timer.stop()
        self.executor.flush()
        self.executor.stop()
        self._presence_stop.set()
        self.worker.stop(timeout=2000)
        self.worker = None
        with contextlib.suppress(Exception):
            self.runtime.store.worker_gone(self.id)
        store = self.runtime.store
        log.info(
            "worker %s stopped (claims: %d runs in %d statements; final finishes: %d in %d)",
            self.id,
            store.claims.items,
            store.claims.batches,
            store.finishes.items,
            store.finishes.batches,
            extra={"action": "worker_stopped"},
        )


def _serve(queues: Sequence[str], threads: int, timer: bool, modules: Sequence[str]) -> None:
    """Body of one worker OS process."""
    from .bootstrap import configure
    from .logs import setup_logging

    setup_logging()
    rt = configure()
    import_task_modules(modules)
    try:
        check_queue_names(rt)
    except ValueError as exc:  # a mistake in the task code: one line, not a traceback
        raise SystemExit(str(exc)) from None
    wp = WorkerProcess(rt, queues, threads, timer)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    wp.start()
    stop.wait()
    wp.stop()
    rt.close()


def run_worker(
    queues: Sequence[str], processes: int, threads: int, timer: bool, modules: Sequence[str]
) -> int:
    """Start ``processes`` worker processes (the timer loop in the first one only)."""
    from .settings import Settings

    health.clear(Settings(), "worker")  # heartbeat files of an earlier container
    if processes <= 1:
        _serve(queues, threads, timer, modules)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_serve,
            args=(queues, threads, timer and i == 0, modules),
            name=f"buster-worker-{i}",
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()

    def forward(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.pid and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    for p in procs:
        p.join()
        code = code or (p.exitcode or 0)
    return code
