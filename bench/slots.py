"""Concurrency slots: how fast a limited task drains, hand-on against the timer's wake alone.

    .venv/bin/python bench/slots.py [--runs 40] [--limit 1] [--rounds 3] [--seconds 0]

A task with ``concurrency_limit=--limit`` gets ``--runs`` runs of ``--seconds`` each, on an
in-process worker (4 threads, timer loop on), against a fresh Postgres database and
RabbitMQ queue (both removed at the end). Measured: trigger of the first run → the last
COMPLETED, alternately

- as shipped: the worker whose run frees a slot hands it on at once;
- the baseline, in the same process: that hand-on switched off, so freed slots wait for
  the timer's wake step (``BUSTER_TIMER_INTERVAL_SECONDS``, 0.25 s).

Prints the median drain time of each and their ratio.

Then, on the same database, the wake step's pick of ``--groups`` groups' oldest waiting
runs (one per group, as when many tenants' slots free at once): the one LATERAL statement
it sends on Postgres against the per-group statements (its SQLite path), alternately, each
in a transaction rolled back.

Last, with ``--waiting`` runs waiting for a slot of one task (a paused queue, or a limited
task with a backlog) beside the pick's 1,000 small groups: what the wake step reads each
tick (every task) and each hand-on (one task) to count the groups' slots,
``wake_groups()`` (the busy-slot index; a task with many runs waiting probed group by
group) against ``usage()``'s one GROUP BY over every waiting run, alternately.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.scratch import AMQP, scratch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--limit", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.0)
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--waiting", type=int, default=100_000)
    args = ap.parse_args()

    from cryptography.fernet import Fernet

    with scratch("bench_slots") as (url, queue):
        _run(args, url, queue, Fernet.generate_key().decode())


def _run(args: argparse.Namespace, url: str, queue: str, key: str) -> None:
    import runtime
    from runtime import RunStatus, runs, task, tasks
    from runtime.middleware import RunLifecycle
    from runtime.worker import WorkerProcess

    @task(id="bench-slot", concurrency_limit=args.limit)
    def bench_slot(payload: dict) -> dict:
        if payload["seconds"]:
            time.sleep(payload["seconds"])
        return {}

    rt = runtime.configure(database_url=url, broker_url=AMQP, default_queue=queue,
                           encryption_key=key)
    wp = WorkerProcess(rt, [queue], threads=4)
    wp.start()
    shipped = RunLifecycle._hand_on

    def drain() -> float:
        started = time.perf_counter()
        handles = [tasks.trigger("bench-slot", {"seconds": args.seconds})
                   for _ in range(args.runs)]
        for h in handles:
            while runs.retrieve(h.id).status != RunStatus.COMPLETED:
                time.sleep(0.005)
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"hand-on": [], "timer only": []}
    try:
        drain()  # warm-up: connections, prepared statements, the queue
        for i in range(args.rounds):
            order = ["hand-on", "timer only"] if i % 2 == 0 else ["timer only", "hand-on"]
            for name in order:
                RunLifecycle._hand_on = (  # type: ignore[method-assign]
                    shipped if name == "hand-on" else (lambda self, task_id: None)
                )
                times[name].append(drain())
    finally:
        RunLifecycle._hand_on = shipped  # type: ignore[method-assign]
        wp.stop(timeout=2)
    print(f"{args.runs} runs of {args.seconds} s, concurrency_limit={args.limit}, "
          f"4 threads, timer tick {rt.settings.timer_interval_seconds} s")
    for name, values in times.items():
        print(f"  {name:<11} drain {statistics.median(values):6.2f} s  "
              f"(rounds: {', '.join(f'{v:.2f}' for v in values)})")
    ratio = statistics.median(times["timer only"]) / statistics.median(times["hand-on"])
    print(f"  hand-on is {ratio:.1f}× faster than the timer's wake alone")
    _pick_bench(rt, args.groups, args.rounds)
    _count_bench(rt, args.waiting, args.rounds)


def _pick_bench(rt: object, groups: int, rounds: int) -> None:
    from runtime.store.slots import _oldest_waiting

    store = rt.store  # type: ignore[attr-defined]
    _insert_runs(store, f"""
        SELECT 'run_pick_' || lpad(g::text, 8, '0'), 'bench-pick', 'QUEUED',
               'k' || mod(g, {groups}), 1, true
        FROM generate_series(1, {groups * 5}) g""")
    want = {("bench-pick", f"k{i}"): 1 for i in range(groups)}
    times: dict[str, list[float]] = {"one statement": [], "per group": []}
    for i in range(rounds * 2):
        for name in (["one statement", "per group"] if i % 2 == 0
                     else ["per group", "one statement"]):
            conn = store.engine.connect()
            tx = conn.begin()
            started = time.perf_counter()
            picked = _oldest_waiting(conn, want, postgres=name == "one statement")
            times[name].append(time.perf_counter() - started)
            tx.rollback()
            conn.close()
            assert len(picked) == groups, len(picked)
    one, per = (statistics.median(times[k]) for k in ("one statement", "per group"))
    print(f"wake step picking the oldest waiting run of {groups} groups (5 waiting each):")
    print(f"  one statement {one * 1000:7.1f} ms   per group {per * 1000:7.1f} ms   "
          f"ratio {per / one:.1f}×")


def _count_bench(rt: object, waiting: int, rounds: int) -> None:
    from sqlalchemy import text

    from runtime.durations import utcnow
    from runtime.store.slots import usage, wake_groups

    store = rt.store  # type: ignore[attr-defined]
    _insert_runs(store, f"""
        SELECT 'run_cnt_' || lpad(g::text, 9, '0'), 'bench-backlog', 'QUEUED', '', 5, true
        FROM generate_series(1, {waiting}) g
        UNION ALL
        SELECT 'run_cnx_' || lpad(g::text, 9, '0'), 'bench-backlog', 'EXECUTING', '', 5, false
        FROM generate_series(1, 5) g""")
    one_task = usage(utcnow()).where(text("concurrency_queue = 'bench-backlog'"))
    ways = {
        "wake_groups": lambda conn: wake_groups(conn, True, None, 1000),
        "GROUP BY": lambda conn: conn.execute(usage(utcnow())).all(),
        "hand-on's wake_groups": lambda conn: wake_groups(conn, True, "bench-backlog", 1000),
        "hand-on's GROUP BY": lambda conn: conn.execute(one_task).all(),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    for i in range(max(rounds, 3) * 3):
        for name in (list(ways) if i % 2 == 0 else list(reversed(ways))):
            with store.engine.connect() as conn:
                started = time.perf_counter()
                ways[name](conn)
                times[name].append(time.perf_counter() - started)
    new, old, one_new, one_old = (statistics.median(times[k]) * 1000 for k in ways)
    print(f"wake step counting slot groups with {waiting:,} runs of one task waiting, beside "
          f"the pick's 1,000 groups:")
    print(f"  every task: wake_groups {new:7.1f} ms   GROUP BY {old:7.1f} ms   "
          f"ratio {old / new:.1f}×")
    print(f"  that task (a hand-on): wake_groups {one_new:7.1f} ms   GROUP BY {one_old:7.1f} ms"
          f"   ratio {one_old / one_new:.1f}×")


def _insert_runs(store: Any, select_sql: str) -> None:
    """Runs straight into the table: ``select_sql`` yields (id, task, status, key, limit,
    waiting_for_slot)."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"""
            INSERT INTO runs (id, task_identifier, status, concurrency_key, concurrency_limit,
                              waiting_for_slot, queue, created_at, updated_at, published_at)
            SELECT s.*, 'q', now(), now(), now() FROM ({select_sql}) AS s""")
        # each task's own queue, as a trigger sets it
        conn.exec_driver_sql("UPDATE runs SET concurrency_queue = task_identifier "
                             "WHERE concurrency_queue IS NULL")
        conn.exec_driver_sql("ANALYZE runs")


if __name__ == "__main__":
    main()
