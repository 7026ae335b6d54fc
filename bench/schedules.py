"""The scheduler with 10,000 active schedules that all fire on the same minute.

    .venv/bin/python bench/schedules.py [--schedules 10000] [--baseline 1000]

On real Postgres + RabbitMQ, in a fresh database (dropped at the end) and a queue named
``--prefix``-default (deleted at the end):

1. inserts N active ``* * * * *`` schedules of one scheduled task (one bulk INSERT);
2. starts ``buster-jobs scheduler`` (a subprocess) and measures boot time (process start →
   "scheduler ready", and the load itself as the scheduler reports it) and RSS;
3. waits for the next minute boundary M where all N fire, then measures per run
   ``created_at − M`` (the run row is QUEUED from the moment it exists) and
   ``published_at − M``: p50 / p99 / max, and whether all N were QUEUED within 10 s;
4. baseline, same run: ``--baseline`` sequential ``tasks.trigger`` calls (what firing each
   schedule with its own trigger call would cost), extrapolated to N; prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TASK_ID = "bench-scheduled"


def _rss_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            key, value = line.split(":")
            out[key] = int(value.split()[0])
    return out


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--schedules", type=int, default=10_000)
    ap.add_argument("--baseline", type=int, default=1000)
    ap.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    ap.add_argument("--prefix", default=f"bsched{uuid.uuid4().hex[:6]}")
    args = ap.parse_args()

    import psycopg
    from cryptography.fernet import Fernet

    db = f"{args.prefix}_db"
    db_url = urlunsplit(urlsplit(args.admin_url)._replace(path="/" + db))
    workdir = Path(tempfile.mkdtemp(prefix="buster-bench-sched-"))
    queue = f"{args.prefix}-default"
    settings = {
        "database_url": db_url,
        "broker_url": args.amqp_url,
        "default_queue": queue,
        "large_queue": f"{args.prefix}-large",
        "encryption_key": Fernet.generate_key().decode(),
        "data_dir": str(workdir / "data"),
    }
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    proc: subprocess.Popen[bytes] | None = None
    try:
        import runtime
        from runtime import schedules
        from runtime.store import tables as t
        from runtime.worker import sync_task_definitions

        @schedules.task(id=TASK_ID)
        def bench_scheduled(payload: Any) -> None:  # never runs here: no worker
            return None

        rt = runtime.configure(**settings)
        sync_task_definitions(rt)  # as a worker's boot: the scheduler triggers by id
        n = args.schedules
        now = datetime.now(UTC)
        rows = [
            {"id": f"sched_bench{i:08d}", "task_identifier": TASK_ID, "type": "IMPERATIVE",
             "cron": "* * * * *", "timezone": "UTC", "active": True, "skip_if_active": False,
             "created_at": now, "updated_at": now}
            for i in range(n)
        ]
        with rt.store.engine.begin() as conn:
            for i in range(0, n, 2000):
                conn.execute(t.schedules.insert(), rows[i:i + 2000])
        print(f"{n} active schedules inserted")

        env = {k: v for k, v in os.environ.items() if not k.startswith("BUSTER_")}
        env.update({f"BUSTER_{k.upper()}": str(v) for k, v in settings.items()})
        env.update(PYTHONPATH=str(REPO), BUSTER_TASK_MODULES="", BUSTER_LOG_LEVEL="INFO")
        log_path = workdir / "scheduler.log"
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "scheduler"],
            env=env, cwd=REPO, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        )
        while "scheduler ready" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() - t0 > 120:
                print(log_path.read_text())
                raise SystemExit("scheduler did not become ready")
            time.sleep(0.05)
        boot = time.monotonic() - t0
        m = re.search(r"loaded in ([\d.]+) s", log_path.read_text())
        load = float(m.group(1)) if m else float("nan")
        rss_boot = _rss_kb(proc.pid)

        # the minute boundary where all fire (at least 3 s away so nothing is half-loaded)
        boundary = (datetime.now(UTC) + timedelta(seconds=63)).replace(second=0, microsecond=0)
        if boundary - datetime.now(UTC) > timedelta(seconds=60):
            boundary -= timedelta(minutes=1)
        print(f"scheduler ready in {boot:.2f} s (load {load:.2f} s); "
              f"waiting for {boundary:%H:%M:%S}Z")
        r = t.runs.c

        def counts() -> tuple[int, int]:
            from sqlalchemy import func, select

            with rt.store.autocommit.connect() as c:
                row = c.execute(select(func.count(), func.count(r.published_at))
                                .where(r.created_at >= boundary)).one()
                return int(row[0]), int(row[1])

        while datetime.now(UTC) < boundary:
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while counts()[1] < n and time.monotonic() < deadline:
            time.sleep(0.2)
        rss_fire = _rss_kb(proc.pid)
        from sqlalchemy import select

        with rt.store.autocommit.connect() as c:
            got = c.execute(select(r.created_at, r.published_at, r.status, r.payload)
                            .where(r.created_at >= boundary)).all()
        fired = [g for g in got if g[3]["timestamp"] == boundary.isoformat()]
        lag = [(g[0] - boundary).total_seconds() for g in fired]
        pub = [(g[1] - boundary).total_seconds() for g in fired if g[1] is not None]
        queued = sum(1 for g in fired if g[2] == "QUEUED")

        # baseline: one trigger call per schedule, as a naive scheduler would do
        from runtime import tasks

        b0 = time.perf_counter()
        for i in range(args.baseline):
            tasks.trigger(TASK_ID, {"schedule_id": f"baseline{i}", "type": "IMPERATIVE",
                                    "timestamp": boundary.isoformat()},
                          idempotency_key=f"baseline-{i}")
        per_call = (time.perf_counter() - b0) / args.baseline
        base_n = per_call * n

        print()
        print(f"schedules                     {n}")
        print(f"boot (process start → ready)  {boot:.2f} s   (loading + APScheduler jobs "
              f"{load:.2f} s)")
        print(f"RSS after boot                {rss_boot['VmRSS'] / 1024:.1f} MiB")
        print(f"RSS after the fire (peak)     {rss_fire['VmRSS'] / 1024:.1f} MiB "
              f"(peak {rss_fire['VmHWM'] / 1024:.1f} MiB)")
        print(f"runs for {boundary:%H:%M}Z            {len(fired)} (QUEUED {queued})")
        if lag:
            print(f"fire lag created_at − tick    p50 {_pct(lag, 50):.2f} s  p99 "
                  f"{_pct(lag, 99):.2f} s  max {max(lag):.2f} s")
        if pub:
            print(f"publish lag published_at − tick  p50 {_pct(pub, 50):.2f} s  p99 "
                  f"{_pct(pub, 99):.2f} s  max {max(pub):.2f} s  ({len(pub)} published)")
        ok = len(fired) == n and lag and max(lag) <= 10
        print(f"all {n} QUEUED within 10 s      {'YES' if ok else 'NO'}")
        print(f"baseline: {args.baseline} sequential tasks.trigger calls, "
              f"{per_call * 1000:.2f} ms each → {base_n:.1f} s for {n}")
        if lag:
            print(f"ratio baseline / batched (time to all QUEUED)  "
                  f"{base_n / max(max(lag), 1e-3):.1f}×")
        if lag:
            print(f"(stdev of lag {statistics.pstdev(lag):.2f} s)")
        return 0 if ok else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        from runtime import bootstrap

        bootstrap.reset()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        try:
            import pika

            ch = pika.BlockingConnection(pika.URLParameters(args.amqp_url)).channel()
            for q in (queue, f"{args.prefix}-large"):
                for suffix in ("", ".DQ", ".XQ"):
                    ch.queue_delete(q + suffix)
        except Exception as exc:  # pragma: no cover - best effort cleanup
            print(f"queue cleanup failed: {exc}")


if __name__ == "__main__":
    sys.exit(main())
