"""Durable waits: resume lag and how many waiting runs one worker holds.

    .venv/bin/python bench/waits.py [--runs 1000] [--seconds 10] [--hold 10000] [--threads 4]

1. ``--runs`` runs each ``wait.for_(seconds=--seconds)`` on one worker process with
   ``--threads`` threads. Resume lag per run = when it was EXECUTING again − its waitpoint's
   due time (both from the store). Prints p50/p99 (target p99 ≤ 1 s), and the wall time
   against the baseline measured in the same run: the same waits done by sleeping in the
   worker thread (a thread held per wait), extrapolated from a short sample.
2. ``--hold`` runs waiting at once on that same worker (target: all WAITING, worker fine).

Uses a fresh Postgres database and RabbitMQ queue, both removed at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.scratch import AMQP, scratch  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--hold", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()

    with scratch("bench_waits") as (url, queue):
        _run(args, url, queue)


def _run(args: argparse.Namespace, url: str, queue: str) -> None:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSTER_")}
    settings = {
        "DATABASE_URL": url,
        "BROKER_URL": AMQP,
        "DEFAULT_QUEUE": queue,
        "TASK_MODULES": "bench.wait_tasks",
        "ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TIMER_INTERVAL_SECONDS": "0.1",
    }
    env.update({f"BUSTER_{k}": v for k, v in settings.items()}, PYTHONPATH=str(REPO))
    os.environ.update({f"BUSTER_{k}": v for k, v in settings.items()})
    import runtime

    rt = runtime.configure()
    log = open(f"/tmp/{queue}.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runtime.cli",
            "worker",
            "-Q",
            queue,
            "-p",
            "1",
            "-t",
            str(args.threads),
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        store = rt.store
        _wait(lambda: store.workers_online(10), 60)

        # baseline: waits that hold a thread; measure a sample, extrapolate
        sample = args.threads * 2
        t0 = time.monotonic()
        b = runtime.tasks.batch_trigger("bench-sleep", [{"seconds": 1.0}] * sample)
        _wait(lambda: _count(store, b.batch_id, "COMPLETED") == sample, 120)
        per_thread_run = (time.monotonic() - t0) * args.threads / sample  # s per run per thread
        baseline_wall = args.runs * max(args.seconds, per_thread_run) / args.threads

        t0 = time.monotonic()
        batch = runtime.tasks.batch_trigger("bench-wait", [{"seconds": args.seconds}] * args.runs)
        _wait(
            lambda: _count(store, batch.batch_id, "COMPLETED") == args.runs, args.seconds * 4 + 300
        )
        wall = time.monotonic() - t0
        lags = _resume_lags(store, batch.batch_id)
        print(
            f"{args.runs} runs × wait.for_({args.seconds:g} s) on 1 worker × {args.threads} threads"
        )
        print(
            f"  resume lag  p50 {pct(lags, 50) * 1000:7.1f} ms   p99 {pct(lags, 99) * 1000:7.1f} ms"
            f"   max {max(lags) * 1000:7.1f} ms   (target p99 ≤ 1000 ms)"
        )
        print(
            f"  wall time   {wall:7.1f} s   baseline (thread held per wait) "
            f"{baseline_wall:9.1f} s   ratio {baseline_wall / wall:6.1f}× faster"
        )

        t0 = time.monotonic()
        held = runtime.tasks.batch_trigger("bench-wait", [{"seconds": 3600}] * min(args.hold, 1000))
        ids = [held.batch_id]
        for start in range(1000, args.hold, 1000):
            n = min(1000, args.hold - start)
            ids.append(runtime.tasks.batch_trigger("bench-wait", [{"seconds": 3600}] * n).batch_id)
        _wait(lambda: sum(_count(store, i, "WAITING") for i in ids) == args.hold, 900)
        took = time.monotonic() - t0
        alive = worker.poll() is None
        print(
            f"{args.hold} runs WAITING at once on that worker after {took:.1f} s "
            f"({args.hold / took:.0f} runs/s suspended); worker alive: {alive}; "
            f"threads held: 0 of {args.threads}"
        )
    finally:
        worker.terminate()
        worker.wait(30)


def _wait(pred, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise SystemExit("benchmark timed out")


def _count(store, batch_id: str, status: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from runtime.store import tables as t

    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(t.runs.c.batch_id == batch_id, t.runs.c.status == status)
            ).scalar_one()
        )


def _resume_lags(store, batch_id: str) -> list[float]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from runtime.store import tables as t

    q = (
        select(t.runs.c.executing_since, t.waitpoints.c.due_at)
        .join(t.waitpoints, t.waitpoints.c.run_id == t.runs.c.id)
        .where(t.runs.c.batch_id == batch_id, t.waitpoints.c.kind == "DATETIME")
    )
    with store.engine.connect() as conn:
        return [(a - b).total_seconds() for a, b in conn.execute(q)]


if __name__ == "__main__":
    main()
