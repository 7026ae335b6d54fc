"""Postgres statements and row writes per run, counted — the input of docs/capacity.md.

    .venv/bin/python bench/statements_per_run.py [--runs 200] [--logs 3]

One process, a real Postgres (a fresh database, dropped at the end) and RabbitMQ (queues
named ``stmt-<tag>``, deleted at the end): an in-process worker with no timer loop (in
production the scheduler runs it), a no-op task and one that writes ``--logs`` log lines and
a metadata key. A SQLAlchemy ``before_cursor_execute`` hook counts every statement the
runtime sends, split into the producer's (``tasks.trigger``, this thread) and the worker's
(every other thread); row counts of ``runs``, ``run_attempts`` and ``run_logs`` give the rows
written, ``pg_current_wal_lsn`` the WAL (cluster-wide: an upper bound on a shared server) and
``pg_total_relation_size`` the bytes stored. The worker's idle background (presence, lease
renewals) is measured for the same length of time and subtracted. Completion is polled over
a separate connection that the hook does not see.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ADMIN = os.environ.get("BUSTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("BUSTER_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
TABLES = ("runs", "run_attempts", "run_logs")
_VERB = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE)\b", re.I)
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+\"?(\w+)", re.I)
_CTE_WRITE = re.compile(r"\b(INSERT INTO|UPDATE|DELETE FROM)\s+\"?(\w+)", re.I)


class Counter:
    """Statements by (who, verb, table), while ``on``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.main = threading.get_ident()
        self.on = False
        self.by: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def hook(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not self.on:
            return
        who = "producer" if threading.get_ident() == self.main else "worker"
        if statement.lstrip().upper().startswith("WITH"):  # one statement, several writes
            parts = _CTE_WRITE.findall(statement)
            verb = "CTE(" + " + ".join(f"{v.split()[0].upper()} {t}" for v, t in parts) + ")"
            table = ""
        else:
            m = _VERB.match(statement)
            verb = m.group(1).upper() if m else statement.split(None, 1)[0].upper()
            t = _TABLE.search(statement)
            table = t.group(1) if t else "-"
        with self.lock:
            self.by[(who, verb, table)] += 1

    def take(self) -> collections.Counter[tuple[str, str, str]]:
        with self.lock:
            taken, self.by = self.by, collections.Counter()
        return taken


def _rows(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:

        def one(sql: str, *params: Any) -> int:
            row = c.execute(sql, params or None).fetchone()
            return int(row[0]) if row else 0

        counts = {t: one(f"SELECT count(*) FROM {t}") for t in TABLES}
        counts["wal_bytes"] = one("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        counts["table_bytes"] = sum(one("SELECT pg_total_relation_size(%s)", t) for t in TABLES)
    return counts


def _finished(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM runs WHERE status = 'COMPLETED'").fetchone()
    return int(row[0]) if row else 0


def _phase(url: str, counter: Counter, t: Any, runs: int) -> dict[str, Any]:
    done_before = _finished(url)
    before = _rows(url)
    counter.on = True
    started = time.monotonic()
    for i in range(runs):
        t.trigger({"i": i})
    while _finished(url) < done_before + runs:
        time.sleep(0.05)
    time.sleep(1.2)  # the log/metadata flush after the last run
    elapsed = time.monotonic() - started
    counter.on = False
    busy = counter.take()
    after = _rows(url)
    counter.on = True  # the same span of idle worker background, to subtract
    time.sleep(elapsed)
    counter.on = False
    idle = counter.take()
    per: dict[str, float] = collections.defaultdict(float)
    for (who, verb, table), n in busy.items():
        per[f"{who} {verb} {table}".strip()] += n / runs
    for (who, verb, table), n in idle.items():
        per[f"{who} {verb} {table}".strip()] -= n / runs
    return {
        "statements_per_run": {k: round(v, 2) for k, v in sorted(per.items()) if abs(v) >= 0.01},
        "producer_total": round(sum(v for k, v in per.items() if k.startswith("prod")), 2),
        "worker_total": round(sum(v for k, v in per.items() if k.startswith("work")), 2),
        "rows_per_run": {k: round((after[k] - before[k]) / runs, 2) for k in after},
        "seconds": round(elapsed, 2),
    }


def measure(runs: int, logs: int) -> dict[str, Any]:
    import pika
    import psycopg
    from sqlalchemy import event

    import runtime
    from runtime import logger, metadata, task
    from runtime.worker import WorkerProcess

    tag = uuid.uuid4().hex[:8]
    db = f"bench_stmt_{tag}"
    admin = psycopg.connect(ADMIN, autocommit=True)
    admin.execute(f'CREATE DATABASE "{db}"')
    url = f"{ADMIN.rsplit('/', 1)[0]}/{db}"
    queue = f"stmt-{tag}"
    rt = runtime.configure(
        database_url=url,
        broker_url=AMQP,
        default_queue=queue,
        large_queue=f"{queue}-large",
        encryption_key="kCCJ9k0vAO3dFeMj6nCS0jzLCYyoXVmK8o0dyRu1Pzc=",
        worker_presence_seconds=10,
        heartbeat_seconds=10,
        log_flush_seconds=1,
    )

    @task(id="stmt-noop", queue=queue)
    def noop(payload: Any) -> None:
        return None

    @task(id="stmt-logs", queue=queue)
    def chatty(payload: Any) -> dict[str, int]:
        for i in range(logs):
            logger.info("line", i=i)
        metadata.set("progress", 1.0)
        return {"ok": 1}

    counter = Counter()
    event.listen(rt.store.engine, "before_cursor_execute", counter.hook)
    # the hot-path statements (claim, finish, the trigger's insert) go to psycopg directly
    raw_fetch_all = rt.store._raw.fetch_all

    def raw_counted(sql: str, params: Any) -> Any:
        counter.hook(None, None, sql)
        return raw_fetch_all(sql, params)

    rt.store._raw.fetch_all = raw_counted
    wp = WorkerProcess(rt, [queue], threads=8, timer=False)
    wp.start()
    try:
        time.sleep(1)
        return {
            name: _phase(url, counter, t, runs) for name, t in (("noop", noop), ("logs", chatty))
        }
    finally:
        wp.stop(timeout=5)
        runtime.bootstrap.reset()
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
        conn = pika.BlockingConnection(pika.URLParameters(AMQP))
        ch = conn.channel()
        for q in (queue, f"{queue}-large"):
            for suffix in ("", ".DQ", ".XQ"):
                ch.queue_delete(q + suffix)
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--logs", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(measure(args.runs, args.logs), indent=2))


if __name__ == "__main__":
    main()
