"""Liveness for processes that serve no HTTP: a heartbeat file per OS process, and a check.

Each worker process writes ``worker-<pid>.json`` into ``BUSTER_HEALTH_DIR`` on every presence
tick (``BUSTER_WORKER_PRESENCE_SECONDS``): its worker id, whether its threads are alive
(Dramatiq's consumer and worker threads, the lease monitor, the timer loop) and when it last
reached the store. The scheduler writes ``scheduler-<pid>.json`` the same way.

``buster-jobs healthcheck worker`` reads those files — no network, no store connection — so a
Kubernetes exec probe stays cheap:

* liveness: every file is fresh, its process exists and all its threads are alive. A worker
  whose consumer thread died, or whose process hangs, fails and is restarted. The store is
  deliberately not part of liveness: restarting every pod during a database outage fixes
  nothing and turns the outage into a restart storm.
* readiness (``--require-store``): also the last store write succeeded recently.
* ``--db``: also this pod's rows in the ``workers`` table are fresh (one SELECT; for
  operators and tests, not for a probe that runs every few seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("worker", "scheduler")


class Heartbeat:
    """Writes this process's heartbeat file; one instance per OS process and role."""

    def __init__(self, directory: Path, role: str, ident: str):
        self.path = Path(directory) / f"{role}-{os.getpid()}.json"
        self.role = role
        self.ident = ident
        self.store_ok_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Any, role: str, ident: str) -> Heartbeat | None:
        directory = getattr(settings, "health_dir", None)
        return cls(Path(directory), role, ident) if directory else None

    def beat(self, threads: Mapping[str, bool], store_ok: bool, **extra: Any) -> bool:
        """Write the file; False if it could not be written (the probe will say so)."""
        now = time.time()
        if store_ok:
            self.store_ok_at = now
        body = {
            "role": self.role,
            "id": self.ident,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "written_at": now,
            "store_ok_at": self.store_ok_at,
            "threads": dict(threads),
            **extra,
        }
        tmp = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(body))
            os.replace(tmp, self.path)  # a reader never sees half a file
        except OSError:
            return False
        return True

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def clear(settings: Any, role: str) -> None:
    """Forget files of earlier containers: an emptyDir outlives a container restart, and a
    new process may reuse an old pid."""
    directory = getattr(settings, "health_dir", None)
    if directory:
        for f in Path(directory).glob(f"{role}-*.json"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()


def worker_threads(wp: Any) -> dict[str, bool]:
    """Which of a ``WorkerProcess``'s threads are alive."""
    threads: dict[str, bool] = {}
    worker = wp.worker
    if worker is not None:
        for queue, consumer in worker.consumers.items():
            threads[f"consumer:{queue}"] = consumer.is_alive()
        alive = sum(1 for w in worker.workers if w.is_alive())
        threads["worker-threads"] = bool(worker.workers) and alive == len(worker.workers)
    monitor = getattr(wp.executor, "_monitor", None)
    threads["lease-monitor"] = monitor is not None and monitor.is_alive()
    if wp.timer is not None:
        threads.update(timer_threads(wp.timer))
    return threads


def timer_threads(timer: Any) -> dict[str, bool]:
    thread = getattr(timer, "_thread", None)
    return {"timer": thread is not None and thread.is_alive()}


def scheduler_threads(timer: Any, scheduler: Any) -> dict[str, bool]:
    """The scheduler process: its timer loop, APScheduler and the schedule watcher."""
    threads = timer_threads(timer)
    aps = getattr(scheduler, "aps", None)
    if aps is not None:
        threads["apscheduler"] = bool(aps.running)
    watcher = getattr(scheduler, "_watcher", None)
    if watcher is not None:
        threads["schedule-watcher"] = watcher.is_alive()
    return threads


def start_beating(
    runtime: Any, role: str, threads: Callable[[], dict[str, bool]], stop: threading.Event
) -> threading.Thread | None:
    """A thread that beats every presence interval, checking the store with ``SELECT 1``
    (for processes without a presence loop of their own: the scheduler)."""
    hb = Heartbeat.from_settings(runtime.settings, role, f"{socket.gethostname()}:{os.getpid()}")
    if hb is None:
        return None
    clear(runtime.settings, role)

    def loop() -> None:
        from sqlalchemy import text

        while True:
            try:
                with runtime.store.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                ok = True
            except Exception:
                ok = False
            hb.beat(threads(), store_ok=ok)
            if stop.wait(runtime.settings.worker_presence_seconds):
                hb.remove()
                return

    t = threading.Thread(target=loop, name=f"buster-health-{role}", daemon=True)
    t.start()
    return t


# ------------------------------------------------------------------------------ the check
@dataclass
class Verdict:
    ok: bool
    problems: list[str]
    checked: list[dict[str, Any]]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def check(
    directory: Path,
    role: str,
    max_age: float,
    processes: int = 1,
    require_store: bool = False,
    now: float | None = None,
) -> Verdict:
    now = time.time() if now is None else now
    problems: list[str] = []
    beats: list[dict[str, Any]] = []
    for f in sorted(Path(directory).glob(f"{role}-*.json")):
        try:
            beats.append(json.loads(f.read_text()))
        except (OSError, ValueError) as exc:
            problems.append(f"{f.name}: unreadable ({exc})")
    for b in beats:
        name = f"{role} pid {b.get('pid')}"
        if not _pid_alive(int(b.get("pid", 0))):
            problems.append(f"{name}: process is gone")
            continue
        age = now - float(b.get("written_at", 0))
        if age > max_age:
            problems.append(f"{name}: heartbeat is {age:.1f} s old (max {max_age:g} s)")
        dead = sorted(k for k, alive in (b.get("threads") or {}).items() if not alive)
        if dead:
            problems.append(f"{name}: threads not alive: {', '.join(dead)}")
        store_ok_at = b.get("store_ok_at")
        if require_store and (store_ok_at is None or now - float(store_ok_at) > max_age):
            problems.append(f"{name}: no successful store write in the last {max_age:g} s")
    live = sum(1 for b in beats if _pid_alive(int(b.get("pid", 0))))
    if live < processes:
        problems.append(
            f"{live} live {role} heartbeat file(s) in {directory}, expected {processes}"
        )
    return Verdict(ok=not problems, problems=problems, checked=beats)


def check_store_rows(settings: Any, ids: list[str], max_age: float) -> list[str]:
    """The ``workers`` rows of these worker ids were written within ``max_age`` seconds."""
    from .store.engine import build_engine
    from .store.repository import Store

    engine = build_engine(settings.store_url())
    try:
        online = {r["id"] for r in Store(engine).workers_online(max_age)}
    finally:
        engine.dispose()
    return [f"worker {i}: no fresh row in the workers table" for i in ids if i not in online]


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from .settings import Settings

    settings = Settings()
    directory = args.dir or settings.health_dir
    if not directory:
        print(
            "unhealthy: BUSTER_HEALTH_DIR is not set (nothing writes heartbeats)", file=sys.stderr
        )
        return 1
    max_age = args.max_age or max(3 * settings.worker_presence_seconds, 1.0)
    verdict = check(Path(directory), args.role, max_age, args.processes, args.require_store)
    problems = list(verdict.problems)
    if args.db and args.role == "worker" and verdict.checked:
        ids = [str(b["id"]) for b in verdict.checked if _pid_alive(int(b.get("pid", 0)))]
        problems += check_store_rows(settings, ids, max_age)
    if problems:
        for p in problems:
            print(f"unhealthy: {p}", file=sys.stderr)
        return 1
    print(f"healthy: {len(verdict.checked)} {args.role} process(es)")
    return 0


def _arguments(h: argparse.ArgumentParser) -> None:
    h.add_argument("role", choices=ROLES)
    h.add_argument("--dir", type=Path, help="heartbeat folder (default: BUSTER_HEALTH_DIR)")
    h.add_argument(
        "--max-age",
        type=float,
        help="seconds a heartbeat may be old (default: 3 × BUSTER_WORKER_PRESENCE_SECONDS)",
    )
    h.add_argument(
        "--processes", type=int, default=1, help="live processes expected (the worker's -p)"
    )
    h.add_argument(
        "--require-store",
        action="store_true",
        help="also require a recent successful store write (readiness)",
    )
    h.add_argument("--db", action="store_true", help="also check the workers table (one SELECT)")
    h.set_defaults(fn=cmd_healthcheck)


def register(subparsers: Any) -> None:
    """``buster-jobs healthcheck …`` for people; probes call ``python -m runtime.health``."""
    _arguments(
        subparsers.add_parser(
            "healthcheck",
            help="exit 0 if this pod's worker/scheduler processes are alive (Kubernetes probes)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    """The probe entry point. ``buster-jobs`` imports every CLI extension (the agent's pulls
    in the Anthropic SDK: seconds of CPU), too much for a command run every few seconds."""
    parser = argparse.ArgumentParser(prog="python -m runtime.health", description=__doc__)
    _arguments(parser)
    return int(cmd_healthcheck(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
