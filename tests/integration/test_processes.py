"""Multi-process behaviour on real Postgres and RabbitMQ: workers in other processes,
kill -9, concurrent producers, queue routing, malformed messages, graceful shutdown."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pika
import pytest

from runtime import RunStatus, get_runtime, runs, tasks
from tests import tasks as t
from tests.helpers import wait_final, wait_for

pytestmark = pytest.mark.integration


def test_trigger_here_runs_on_worker_in_another_process(pg_env: Any):
    pg_env.start_worker()
    run = wait_final(tasks.trigger("t-logs", {"x": 1}).id, timeout=60)
    assert run.status == RunStatus.COMPLETED
    assert run.attempts[0].worker.split(":")[1] != str(os.getpid())
    shown = pg_env.cli("runs", "show", run.id)
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["status"] == "COMPLETED" and body["metadata"]["progress"] == 0.5
    assert any(line["message"] == "hello from the task" for line in body["logs"])


def test_cli_trigger_wait_prints_status_and_output(pg_env: Any):
    pg_env.start_worker()
    res = pg_env.cli("trigger", "t-echo", "--payload", '{"a": 1}', "--wait", "--timeout", "60")
    assert res.returncode == 0, res.stderr
    assert "COMPLETED" in res.stderr
    assert json.loads(res.stdout.split("\n", 1)[1])["output"] == {"echo": {"a": 1}}


def test_kill_9_mid_run_is_retried_elsewhere_and_completes_once(pg_env: Any, tmp_path: Path):
    trace = tmp_path / "trace"
    victim = pg_env.start_worker(threads=2)
    handle = tasks.trigger("t-slow", {"seconds": 3, "trace": str(trace)})
    wait_for(lambda: runs.retrieve(handle.id).status == RunStatus.EXECUTING, timeout=30)
    wait_for(lambda: "start:1" in t.read_trace(trace))
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    pg_env.start_worker(threads=2)
    run = wait_final(handle.id, timeout=60)
    assert run.status == RunStatus.COMPLETED
    lines = t.read_trace(trace)
    assert lines.count("start:1") == 1 and "done:1" not in lines
    assert lines.count("done:2") == 1  # completed once, on the second attempt
    assert [a.status for a in run.attempts] == ["CRASHED", "COMPLETED"]
    assert runs.list(status="EXECUTING").data == []


def _trigger_same_key(args: tuple[dict[str, Any], int]) -> list[str]:
    settings, n = args
    import runtime

    runtime.configure(**settings)
    return [
        runtime.tasks.trigger("t-echo", {"i": i}, idempotency_key="same-key").id for i in range(n)
    ]


def test_50_concurrent_triggers_from_5_processes_make_one_run(pg_env: Any):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(5) as pool:
        ids = [
            i for chunk in pool.map(_trigger_same_key, [(pg_env.settings, 10)] * 5) for i in chunk
        ]
    assert len(ids) == 50 and len(set(ids)) == 1
    assert len(runs.list(task="t-echo").data) == 1


def test_large_machine_task_runs_only_on_the_large_queue(pg_env: Any):
    default_only = pg_env.start_worker(queues=[pg_env.queue])
    handle = t.large.trigger({})
    time.sleep(1.5)
    assert runs.retrieve(handle.id).status == RunStatus.QUEUED
    assert runs.retrieve(handle.id).queue == pg_env.large_queue
    default_only.terminate()
    pg_env.start_worker(queues=[pg_env.large_queue])
    run = wait_final(handle.id, timeout=60)
    assert run.status == RunStatus.COMPLETED and run.machine == "large-1x"


def _publish_raw(url: str, queue: str, body: bytes) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(
        queue,
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{queue}.XQ"},
    )
    ch.basic_publish("", queue, body)
    conn.close()


def _queue_depth(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(conn.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        conn.close()


def test_malformed_messages_are_dead_lettered_and_the_worker_keeps_going(pg_env: Any):
    url, q = pg_env.settings["broker_url"], pg_env.queue
    w = pg_env.start_worker()
    wait_for(lambda: get_runtime().store.workers_online(5))
    bad = [
        b"not json at all",
        json.dumps(
            {
                "queue_name": q,
                "actor_name": "buster_run",
                "args": [42],
                "kwargs": {},
                "options": {},
                "message_id": "m1",
                "message_timestamp": 0,
            }
        ).encode(),
        json.dumps(
            {
                "queue_name": q,
                "actor_name": "buster_run",
                "args": ["run_doesnotexist"],
                "kwargs": {},
                "options": {},
                "message_id": "m2",
                "message_timestamp": 0,
            }
        ).encode(),
        json.dumps(
            {
                "queue_name": q,
                "actor_name": "someone_else",
                "args": [],
                "kwargs": {},
                "options": {},
                "message_id": "m3",
                "message_timestamp": 0,
            }
        ).encode(),
    ]
    for body in bad:
        _publish_raw(url, q, body)
    wait_for(lambda: _queue_depth(url, f"{q}.XQ") == len(bad), timeout=30)
    run = wait_final(tasks.trigger("t-echo", {"after": "bad"}).id, timeout=30)
    assert run.status == RunStatus.COMPLETED and w.poll() is None
    log = (pg_env.tmp / "worker-0.log").read_text()
    assert "malformed message" in log and "unknown run run_doesnotexist" in log


def test_sigterm_lets_short_runs_finish_and_hands_long_ones_back_uncharged(
    pg_env: Any, tmp_path: Path
):
    trace = tmp_path / "trace"
    w = pg_env.start_worker(threads=2, shutdown_timeout_seconds=1.0)
    short = tasks.trigger("t-slow", {"seconds": 0.5, "trace": str(trace)})
    long = tasks.trigger("t-slow", {"seconds": 5, "trace": str(trace), "chatty": True})
    wait_for(
        lambda: (
            runs.retrieve(long.id).status == RunStatus.EXECUTING
            and runs.retrieve(short.id).status in (RunStatus.EXECUTING, RunStatus.COMPLETED)
        ),
        timeout=30,
    )
    w.send_signal(signal.SIGTERM)
    assert w.wait(timeout=30) == 0
    assert runs.retrieve(short.id).status == RunStatus.COMPLETED
    back = runs.retrieve(long.id)
    assert back.status == RunStatus.QUEUED and back.attempts == []
    pg_env.start_worker(threads=2)
    # the handed-back run continues as attempt 1: nothing was charged
    assert wait_final(long.id, timeout=90).attempt_count == 1


def test_secret_not_in_cli_output(pg_env: Any):
    from pydantic import SecretStr

    pg_env.start_worker()
    payload = t.SchemaPayload(
        name="n", count=1, credentials=t.Credentials(user="u", password=SecretStr("s3cr3t-p4ss"))
    )
    run = wait_final(t.schema.trigger(payload).id, timeout=60)
    for args in (("runs", "show", run.id), ("runs", "list")):
        res = pg_env.cli(*args)
        assert res.returncode == 0 and "s3cr3t" not in res.stdout + res.stderr
    assert "s3cr3t" not in "".join(p.read_text() for p in pg_env.tmp.glob("worker-*.log"))


def test_unknown_task_id_from_cli_waits_in_pending_version(pg_env: Any):
    res = pg_env.cli("trigger", "no-such-task", "--payload", "{}")
    assert res.returncode == 0, res.stderr
    run_id = json.loads(res.stdout)["id"]
    assert runs.retrieve(run_id).status == RunStatus.PENDING_VERSION
    assert "no worker has registered task 'no-such-task' yet" in res.stderr


def test_cli_run_of_an_unknown_task_is_refused_without_a_run(pg_env: Any):
    # `run` runs the task in its own process: one no module there defines would wait forever.
    res = pg_env.cli("run", "no-such-task", "--payload", "{}", timeout=60)
    assert res.returncode != 0
    assert "unknown task id 'no-such-task'" in res.stderr and "t-echo" in res.stderr
    assert runs.list().data == []


def test_bad_json_payload_on_cli_is_a_clear_error(pg_env: Any):
    res = pg_env.cli("trigger", "t-echo", "--payload", "{nope")
    assert res.returncode != 0 and "invalid JSON" in res.stderr
    res = pg_env.cli("trigger", "t-echo", "--payload", "@/no/such/payload.json")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "cannot read '/no/such/payload.json'" in res.stderr
    assert runs.list().data == []


def test_worker_with_unimportable_module_fails_clearly(pg_env: Any):
    res = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "worker", "-Q", pg_env.queue, "no_such_module_xyz"],
        env=pg_env.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode != 0 and "no_such_module_xyz" in res.stderr


def test_batch_of_1000_is_one_insert_and_one_publish_burst(pg_env: Any):
    from sqlalchemy import event

    store = get_runtime().store
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement.split()[0].upper())

    # hot-path statements go to psycopg directly (RawConnections), the rest via SQLAlchemy
    raw_fetch_all = store._raw.fetch_all

    def raw_count(sql: str, params: Any) -> Any:
        statements.append("INSERT" if "INSERT INTO runs" in sql else sql.split()[0].upper())
        return raw_fetch_all(sql, params)

    event.listen(store.engine, "before_cursor_execute", count)
    store._raw.fetch_all = raw_count  # type: ignore[method-assign]
    try:
        batch = tasks.batch_trigger("t-echo", [{"payload": {"i": i}} for i in range(1000)])
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
        del store._raw.fetch_all
    # the runs and their tags in one statement, and one UPDATE marking them published
    assert statements == ["INSERT", "UPDATE"], statements
    assert _queue_depth(pg_env.settings["broker_url"], pg_env.queue) == 1000
    page = runs.list(batch=batch.batch_id, limit=1000)
    rows = get_runtime().store.get_runs([r.id for r in page])
    assert len(rows) == 1000 and all(r["published_at"] is not None for r in rows.values())


def test_concurrency_limit_holds_across_worker_processes(pg_env: Any, tmp_path: Any):
    # two worker processes of 2 x 4 threads: 16 threads race for 2 slots (advisory lock)
    from tests.integration.test_runtime import _most_at_once

    pg_env.start_worker(processes=2)
    pg_env.start_worker(processes=2)
    trace = tmp_path / "trace"
    handles = [tasks.trigger("t-limited", {"i": i, "trace": str(trace), "seconds": 0.2})
               for i in range(12)]
    done = [wait_final(h.id, timeout=90) for h in handles]
    assert {r.status for r in done} == {RunStatus.COMPLETED}
    lines = t.read_trace(trace)
    assert len(lines) == 24 and _most_at_once(lines) == 2, lines
    workers = {r.attempts[0].worker for r in done}
    assert len(workers) >= 2, workers  # the slots really were shared between processes


def test_a_total_concurrency_limit_holds_across_worker_processes(pg_env: Any, tmp_path: Any):
    # 16 threads in 4 processes race 6 keys (one slot each) for a total of 2: the claims
    # of a task with a total take turns per task, not per key
    from tests.integration.test_runtime import _most_at_once

    pg_env.start_worker(processes=2)
    pg_env.start_worker(processes=2)
    trace = tmp_path / "trace"
    handles = [
        tasks.trigger("t-limited-total", {"key": f"k{i % 6}", "trace": str(trace),
                                          "seconds": 0.2}, concurrency_key=f"k{i % 6}")
        for i in range(12)
    ]
    done = [wait_final(h.id, timeout=90) for h in handles]
    assert {r.status for r in done} == {RunStatus.COMPLETED}
    lines = t.read_trace(trace)
    assert len(lines) == 24 and _most_at_once(lines) == 2, lines
