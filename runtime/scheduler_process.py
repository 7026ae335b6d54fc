"""``buster-jobs scheduler``: cron fires (APScheduler) + the runtime's timer loop.

``Scheduler`` keeps one APScheduler job per active schedule in APScheduler's in-memory job
store; each replica has its own (APScheduler's shared SQLAlchemy job store is documented as
unsafe across processes). Replicas agree through the database instead: every replica ticks,
``FireWriter`` lets exactly one turn each tick into a run.

Changes reach a running scheduler within seconds: on Postgres the schedule writes NOTIFY
``buster_schedules`` and a listener wakes the reload at once; on SQLite (and as a safety
net on Postgres) a cheap fingerprint query runs every ``schedule_poll_seconds``.

Misfires: when a scheduler boots, each schedule gets at most ONE catch-up — its latest tick
before the first regular one, if that tick is within ``schedule_misfire_grace_seconds``,
not before the schedule was created, and not already fired. Older ticks are dropped.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from . import schedule_times as times
from .durations import utcnow
from .schedule_fire import FireWriter, Tick
from .store import schedules as sql

log = logging.getLogger("buster.scheduler")


def _noop() -> None:  # pragma: no cover - _TickExecutor never calls job functions
    pass


class _TickExecutor(BaseExecutor):
    """Hands each due tick to the FireWriter's queue on the scheduler thread itself: no
    thread pool, no per-job bookkeeping, so 10,000 simultaneous ticks are queued in about
    a second. With ``coalesce`` APScheduler passes only the latest missed run time."""

    def __init__(self, on_tick: Callable[[str, datetime], None]):
        super().__init__()
        self._on_tick = on_tick

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self._on_tick(job.id, run_times[-1])

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:  # pragma: no cover
        raise NotImplementedError


class Scheduler:
    """Cron ticks for every active schedule, start()/stop() in any process (scheduler, dev)."""

    def __init__(self, runtime: Any, *, clock: Callable[[], datetime] = utcnow):
        self.rt = runtime
        self.settings = runtime.settings
        self.clock = clock
        self.writer = FireWriter(runtime, clock)
        # APScheduler logs every job it adds at INFO: 10,000 lines at boot say nothing
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self.aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": _TickExecutor(self._on_tick)},
            # late ticks: APScheduler hands over the latest only; FireWriter applies grace
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        self._known: dict[str, tuple[str, str, datetime]] = {}  # id → cron, timezone, created
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._fingerprint: Any = None
        self.reloads = 0
        self.boot_seconds = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        started = time.monotonic()
        self.writer.start()
        self._fingerprint = sql.fingerprint(self.rt.store)
        rows = sql.active_schedules(self.rt.store)
        for row in rows:  # pending jobs: added in one go when APScheduler starts
            self._add(row)
        self.aps.start()
        self._catch_up(rows)
        self._watcher = threading.Thread(target=self._watch, name="buster-sched-watch", daemon=True)
        self._watcher.start()
        self.boot_seconds = time.monotonic() - started
        log.info(
            "scheduler ready: %d active schedules loaded in %.2f s",
            len(rows),
            self.boot_seconds,
            extra={"action": "scheduler_ready"},
        )

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.aps.shutdown(wait=False)
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        self.writer.stop()

    # ------------------------------------------------------------------ jobs
    def _trigger(self, cron: str, tz: str) -> Any:
        return times.trigger(cron, tz, self.settings.test_only_cron_seconds_field)

    def _add(self, row: Any) -> None:
        try:
            trig = self._trigger(row["cron"], row["timezone"])
        except ValueError:
            log.exception("schedule %s has an invalid cron; not scheduled", row["id"])
            return
        self.aps.add_job(_noop, trig, id=row["id"], replace_existing=True)
        self._known[row["id"]] = (row["cron"], row["timezone"], row["created_at"])

    def _on_tick(self, schedule_id: str, run_time: datetime) -> None:
        known = self._known.get(schedule_id)
        fire = run_time.astimezone(UTC)
        if known is None or times.suppressed(fire, known[0], known[1]):
            return  # removed meanwhile, or the repeated hour of a fall-back night
        self.writer.submit(Tick(schedule_id, fire))

    def _catch_up(self, rows: Sequence[Any]) -> None:
        """At most one late tick per schedule, if within grace (see module docstring)."""
        grace = self.settings.schedule_misfire_grace_seconds
        allow = self.settings.test_only_cron_seconds_field
        now = self.clock()
        n = 0
        for row in rows:
            job = self.aps.get_job(row["id"])
            if job is None or job.next_run_time is None:
                continue
            before = min(job.next_run_time.astimezone(UTC), now)
            try:
                tick = times.latest_tick(row["cron"], row["timezone"], before, grace, allow)
            except ValueError:
                continue
            if tick is not None and tick >= row["created_at"] and tick < job.next_run_time:
                self.writer.submit(Tick(row["id"], tick, catch_up=True))
                n += 1
        if n:
            log.info(
                "queued %d catch-up ticks (within %.0f s grace)",
                n,
                grace,
                extra={"action": "schedule_catch_up"},
            )

    # ------------------------------------------------------------------ reloads
    def reload(self) -> dict[str, int]:
        """Make the jobs match the active schedules in the table."""
        rows = {r["id"]: r for r in sql.active_schedules(self.rt.store)}
        added = changed = removed = 0
        for sid in list(self._known):
            if sid not in rows:
                self._known.pop(sid, None)
                with contextlib.suppress(Exception):
                    self.aps.remove_job(sid)
                removed += 1
        for sid, row in rows.items():
            old = self._known.get(sid)
            if old is None:
                self._add(row)
                added += 1
            elif old[:2] != (row["cron"], row["timezone"]):
                self._add(row)
                changed += 1
        self.reloads += 1
        if added or changed or removed:
            log.info(
                "schedules reloaded: +%d ~%d -%d",
                added,
                changed,
                removed,
                extra={"action": "schedules_reloaded"},
            )
        return {"added": added, "changed": changed, "removed": removed}

    def _watch(self) -> None:
        listener = None
        poll = self.settings.schedule_poll_seconds
        while not self._stop.is_set():
            if self.rt.store.is_postgres and listener is None:
                listener = self._listen()
            try:
                if listener is not None:
                    notified = False
                    for _ in listener.notifies(timeout=poll, stop_after=1):
                        notified = True
                    if notified:  # a burst of changes (bulk create) → one reload
                        time.sleep(0.05)
                        for _ in listener.notifies(timeout=0.01):
                            pass
                else:
                    self._stop.wait(poll)
                if self._stop.is_set():
                    break
                fp = sql.fingerprint(self.rt.store)
                if fp != self._fingerprint:
                    self._fingerprint = fp
                    self.reload()
            except Exception:
                log.exception("schedule reload failed; retrying")
                if listener is not None:
                    with contextlib.suppress(Exception):
                        listener.close()
                    listener = None
                self._stop.wait(poll)
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()

    def _listen(self) -> Any:
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.settings.store_url()).set(drivername="postgresql")
        try:
            conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
            conn.execute(f"LISTEN {sql.CHANNEL}")
            return conn
        except Exception:
            log.warning("cannot LISTEN for schedule changes; polling", exc_info=True)
            return None


def start_dev_scheduler(runtime: Any) -> Scheduler:
    """For ``buster-jobs dev``: cron fires in the same process (stop it with ``.stop()``)."""
    sched = Scheduler(runtime)
    sched.start()
    return sched


def run_scheduler(modules: Sequence[str]) -> int:
    from .bootstrap import configure
    from .logs import setup_logging
    from .timer import TimerLoop

    setup_logging()
    rt = configure()
    _sync_declarative(rt, modules)
    timer = TimerLoop(rt)
    sched = Scheduler(rt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    timer.start()
    sched.start()
    from .health import scheduler_threads, start_beating

    start_beating(rt, "scheduler", lambda: scheduler_threads(timer, sched), stop)  # probes
    stop.wait()
    sched.stop()
    timer.stop()
    rt.close()
    return 0


def _sync_declarative(rt: Any, modules: Sequence[str]) -> None:
    """Import the task modules it can and sync their declarative schedules. The scheduler
    does not need task code to fire (it triggers by id), so a module that fails to import
    is logged, not fatal."""
    import importlib

    from .schedules import sync_declarative_schedules

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:
            log.warning("scheduler could not import task module %s", name, exc_info=True)
    sync_declarative_schedules(rt)
