"""Baselines for ``bench/throughput.py``: plain Dramatiq actors, no buster-jobs code.

Run by the ``dramatiq`` CLI (``dramatiq bench.bare_actors -p 2 -t 8 -Q <queue>``) and imported
by the producer. The broker is Dramatiq's stock RabbitmqBroker (default middleware, publisher
confirms on as in the runtime). Two actors:

* ``bench_noop``: does nothing: the ceiling of Dramatiq + RabbitMQ on this machine.
* ``bench_two_updates``: the two conditional UPDATEs a run needs at minimum (claim, complete)
  on a plain table, with psycopg 3 in autocommit and one connection per worker thread: the
  floor the runtime is measured against.

Each worker process counts the messages it processed and writes ``{count, first, last}``
(wall-clock seconds) to ``$BENCH_STATS_DIR/<pid>.json`` every 20 ms, so the benchmark sees
progress without adding a round trip per message; ``<pid>.ready`` appears once the worker
consumes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import Middleware

AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/buster_bench")
NOOP_QUEUE = os.environ.get("BENCH_NOOP_QUEUE", "bench-bare")
FLOOR_QUEUE = os.environ.get("BENCH_FLOOR_QUEUE", "bench-floor")
TABLE = "bench_runs"

CLAIM_SQL = (
    f"UPDATE {TABLE} SET status = 'EXECUTING', started_at = now() "
    "WHERE id = %s AND status = 'QUEUED' RETURNING id, payload"
)
COMPLETE_SQL = (
    f"UPDATE {TABLE} SET status = 'COMPLETED', finished_at = now() "
    "WHERE id = %s AND status = 'EXECUTING'"
)


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.first = 0.0
        self.last = 0.0

    def hit(self) -> None:
        now = time.time()
        with self.lock:
            if not self.count:
                self.first = now
            self.count += 1
            self.last = now


_stats = _Stats()


def _stats_dir() -> Path | None:
    d = os.environ.get("BENCH_STATS_DIR")
    return Path(d) if d else None


def _write_stats_forever(directory: Path) -> None:
    path, tmp = directory / f"{os.getpid()}.json", directory / f".{os.getpid()}.tmp"
    written = -1
    while True:
        time.sleep(0.02)
        with _stats.lock:
            snap = {"count": _stats.count, "first": _stats.first, "last": _stats.last}
        if snap["count"] != written:
            tmp.write_text(json.dumps(snap))
            tmp.replace(path)
            written = snap["count"]


class _Ready(Middleware):
    """Marks this worker process as consuming and starts its stats writer."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        directory = _stats_dir()
        if directory is None:
            return
        threading.Thread(
            target=_write_stats_forever, args=(directory,), daemon=True, name="bench-stats"
        ).start()
        (directory / f"{os.getpid()}.ready").write_text("1")


broker = RabbitmqBroker(url=AMQP_URL, confirm_delivery=True)
broker.add_middleware(_Ready())
dramatiq.set_broker(broker)

_local = threading.local()


def _conn() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg.connect(PG_URL, autocommit=True)
    return conn


@dramatiq.actor(queue_name=NOOP_QUEUE, max_retries=0)
def bench_noop(run_id: str) -> None:
    _stats.hit()


@dramatiq.actor(queue_name=FLOOR_QUEUE, max_retries=0)
def bench_two_updates(run_id: str) -> None:
    conn = _conn()
    claimed = conn.execute(CLAIM_SQL, (run_id,)).fetchone()
    if claimed is not None:
        conn.execute(COMPLETE_SQL, (run_id,))
    _stats.hit()
