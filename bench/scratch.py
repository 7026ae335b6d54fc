"""A fresh Postgres database and RabbitMQ queue for a benchmark, removed at the end.

    with scratch("bench_waits") as (url, queue):
        ...

Removing comes after ``runtime.bootstrap.reset()`` (the runtime's pooled connections
would otherwise hold the database), and drops the queue's delay and dead-letter queues
too.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

PG_ADMIN = os.environ.get("BUSTER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("BUSTER_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[tuple[str, str]]:
    """(database URL, queue name), both unique to this run."""
    import psycopg

    tag = uuid.uuid4().hex[:8]
    db, queue = f"{prefix}_{tag}", f"{prefix.replace('_', '-')}-{tag[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + db, queue
    finally:
        from runtime import bootstrap

        bootstrap.reset()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        delete_queue(queue)


def delete_queue(queue: str) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    try:
        ch = conn.channel()
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            ch.queue_delete(queue=name)
    finally:
        conn.close()
