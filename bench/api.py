"""HTTP API and runs-list benchmarks for the dashboard (issue 7).

    .venv/bin/python bench/api.py [--rows 1000000] [--seconds 10] [--connections 32]
                                  [--workers 2] [--skip-trigger] [--skip-list] [--keep]

1. **Trigger endpoint**: ``buster-jobs dashboard --workers N`` against a fresh Postgres
   database and RabbitMQ; ``wrk`` (apt: wrk) POSTs ``/api/v1/tasks/{id}/trigger`` with the
   body the SDK sends, for ``--seconds``; prints requests/s and p50/p90/p99 latency, then
   the same against the HTTP floor (``bench/http_floor.py``: same uvicorn and Starlette, an
   endpoint that does no work) and the ratio. Target ≥ 1,000 req/s. The load generator
   shares the machine's CPUs with the server.
2. **Runs list at scale**: ``--rows`` runs bulk-inserted with ``generate_series`` (20 tasks,
   13 statuses, 1 in 10 runs tagged), then for each filter combination the runs-list page
   (``/runs``) and API (``/api/v1/runs``) are timed in-process (server time, no network)
   and the SQL's ``EXPLAIN ANALYZE`` is printed. Target p95 ≤ 50 ms.

Everything runs in a throwaway database (dropped at the end unless ``--keep``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PG_ADMIN = os.environ.get("BUSTER_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("BUSTER_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")


def make_db() -> tuple[str, str]:
    import psycopg

    name = f"buster_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def drop_db(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ---------------------------------------------------------------------- 1. trigger
# the body the SDK sends for tasks.trigger("bench-noop", {n: 1}, {tags: ["bench"]})
_WRK_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
wrk.body = '%s'
"""
_BODY = (
    '{"payload":"{\\\\"json\\\\":{\\\\"n\\\\":1}}","options":'
    '{"payloadType":"application/super+json","payloadSize":16,"tags":["bench"]}}'
)


def bench_trigger(args: argparse.Namespace, env: dict[str, str]) -> None:

    from dashboard.auth import create_key
    from runtime import get_runtime

    if shutil.which("wrk") is None:
        print("trigger: wrk not found (apt-get install -y wrk); skipped")
        return
    rt = get_runtime()
    rt.store.upsert_task_definitions(
        [
            {
                "id": "bench-noop",
                "queue": env["BUSTER_DEFAULT_QUEUE"],
                "machine": "small-1x",
                "retry": {"max_attempts": 1},
                "max_duration": 60,
                "payload_schema": None,
                "kind": "STANDARD",
                "version": "1",
                "module": "bench",
                "updated_at": _now(),
            }
        ]
    )
    _, key = create_key(rt.store, "bench")
    port = 18000 + os.getpid() % 1000
    dashboard = [sys.executable, "-m", "runtime.cli", "dashboard", "--port", str(port)]
    dashboard += ["--workers", str(args.workers)]
    floor = [sys.executable, "-m", "uvicorn", "bench.http_floor:app", "--port", str(port + 1)]
    floor += ["--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
    header = f"{args.workers} uvicorn worker(s), {args.connections} connections, {args.seconds}s"
    ours = _serve_and_load(dashboard, port, key, args, env)
    print(f"== trigger endpoint: {header} ==")
    print(ours["raw"])
    base = _serve_and_load(floor, port + 1, key, args, env)
    print(f"== HTTP floor (bench/http_floor.py: same uvicorn + Starlette, no work): {header} ==")
    print(base["raw"])
    with rt.store.engine.connect() as conn:
        from sqlalchemy import func, select

        from runtime.store import tables as t

        n = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    print(f"runs created: {n}")
    print(
        f"trigger endpoint {ours['rps']:,.0f} req/s (p50 {ours['p50']}, p99 {ours['p99']}); "
        f"HTTP floor {base['rps']:,.0f} req/s; ratio {ours['rps'] / base['rps']:.2f}×; "
        f"target ≥ 1,000 req/s: {'met' if ours['rps'] >= 1000 else 'NOT met'}"
    )


def _serve_and_load(
    cmd: list[str], port: int, key: str, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, Any]:
    """Start a server, wait for it, warm it up, then measure it with wrk."""
    import httpx

    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
            fh.write(_WRK_LUA % (key, _BODY))
        target = f"{url}/api/v1/tasks/bench-noop/trigger"
        subprocess.run(
            ["wrk", "-t2", "-c8", "-d2s", "-s", fh.name, target], capture_output=True, timeout=60
        )  # warm-up
        res = subprocess.run(
            ["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
            + ["-s", fh.name, target],
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    out: dict[str, Any] = {"raw": res.stdout, "rps": 0.0, "p50": "?", "p99": "?"}
    for line in res.stdout.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            out["rps"] = float(parts[1])
        elif parts[:1] == ["50%"]:
            out["p50"] = parts[1]
        elif parts[:1] == ["99%"]:
            out["p99"] = parts[1]
    if " 2xx" in res.stdout or "Non-2xx" in res.stdout:
        out["raw"] += "(some responses were not 2xx: see above)\n"
    return out


def _now() -> Any:
    from runtime.durations import utcnow

    return utcnow()


# ---------------------------------------------------------------------- 2. list
FILL = """
CREATE FUNCTION pg_temp.b32(v bigint, n int) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
  SELECT string_agg(substr('0123456789abcdefghjkmnpqrstvwxyz',
                           ((v >> (5 * (n - 1 - i))) & 31)::int + 1, 1), '' ORDER BY i)
  FROM generate_series(0, n - 1) AS i $f$;
CREATE TEMP TABLE bench_ids AS
SELECT g, now() - make_interval(secs => (:n - g) * 2) AS ts FROM generate_series(1, :n) AS g;
INSERT INTO runs (id, task_identifier, status, queue, tags, created_at, updated_at,
                  started_at, finished_at, execution_ms, attempt_count, batch_id,
                  idempotency_key, idempotency_key_user)
SELECT 'run_' || pg_temp.b32((extract(epoch FROM ts) * 1000)::bigint, 10) || '000000'
              || pg_temp.b32(g, 10),
       'task-' || (g % 20),
       (ARRAY['COMPLETED','COMPLETED','COMPLETED','COMPLETED','FAILED','QUEUED','EXECUTING',
              'WAITING','CANCELED','DELAYED','CRASHED','EXPIRED','TIMED_OUT'])[1 + g % 13],
       'default',
       CASE WHEN g % 10 = 0 THEN jsonb_build_array('org:' || (g % 100)) ELSE '[]'::jsonb END,
       ts, ts, ts, ts + interval '1 second',
       (g * 37) % 5000, 1,
       CASE WHEN g % 1000 < 10 THEN 'batch_' || (g / 1000) ELSE NULL END,
       CASE WHEN g % 50 = 0 THEN 'key-' || g ELSE NULL END,
       CASE WHEN g % 50 = 0 THEN 'key-' || g ELSE NULL END
FROM bench_ids;
INSERT INTO run_tags (tag, run_id)
SELECT tags->>0, id FROM runs WHERE jsonb_array_length(tags) > 0;
ANALYZE runs; ANALYZE run_tags;
"""

COMBOS: list[tuple[str, str]] = [
    ("no filter", ""),
    ("status", "status=FAILED"),
    ("status ×2", "status=FAILED&status=CRASHED"),
    ("task", "task=task-7"),
    ("status + task", "status=FAILED&task=task-7"),
    ("tag", "tag=org:40"),
    ("tag + status", "tag=org:40&status=COMPLETED"),
    ("time range (1 h)", "from={hour_ago}"),
    ("time range + status", "from={day_ago}&status=EXECUTING"),
    ("old time window", "from={old_from}&to={old_to}"),
    ("idempotency key", "q=key-500000"),
    ("batch", "q=batch_400"),
    ("page 2 (cursor)", "cursor={mid_id}"),
]


def fill(rows: int) -> None:
    from sqlalchemy import text

    from runtime import get_runtime

    t0 = time.monotonic()
    with get_runtime().store.engine.begin() as conn:
        for stmt in FILL.replace(":n", str(rows)).split(";"):
            if stmt.strip():
                conn.execute(text(stmt))
    print(f"inserted {rows:,} runs in {time.monotonic() - t0:.1f} s")


def bench_list(args: argparse.Namespace) -> None:
    from datetime import timedelta

    from sqlalchemy import event, text
    from starlette.testclient import TestClient

    from dashboard.app import create_app
    from dashboard.config import DashboardSettings
    from runtime import get_runtime
    from runtime.durations import utcnow

    fill(args.rows)
    rt = get_runtime()
    app = create_app(rt, DashboardSettings(trusted_header="X-Bench-User"))
    from dashboard.auth import create_key

    _, key = create_key(rt.store, "bench")
    client = TestClient(app, headers={"X-Bench-User": "bench"})
    bearer = {"Authorization": f"Bearer {key}"}
    now = utcnow()
    fmt = "%Y-%m-%dT%H:%M"
    values = {
        "hour_ago": (now - timedelta(hours=1)).strftime(fmt),
        "day_ago": (now - timedelta(days=1)).strftime(fmt),
        "old_from": (now - timedelta(days=20)).strftime(fmt),
        "old_to": (now - timedelta(days=19)).strftime(fmt),
        "mid_id": _mid_id(rt),
    }
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM runs" in statement and "ORDER BY runs.id DESC" in statement:
            captured.append((statement, params))

    event.listen(rt.store.engine, "before_cursor_execute", capture)
    print(
        f"\n== runs list, {args.rows:,} runs: server time per request "
        f"({args.repeat} requests each) =="
    )
    print(f"{'filter':<22}{'page p50':>10}{'page p95':>10}{'api p95':>10}  plan")
    plans = {}
    for label, query in COMBOS:
        q = query.format(**values)
        page_times, api_times = [], []
        for i in range(args.repeat):
            captured.clear()
            t0 = time.perf_counter()
            r = client.get(f"/runs?{q}")
            page_times.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, (label, r.status_code)
            if i == 0 and captured:
                plans[label] = captured[0]
        api_q = _api_query(q)
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            r = client.get(f"/api/v1/runs?{api_q}", headers=bearer)
            assert r.status_code == 200, (label, r.text)
            api_times.append((time.perf_counter() - t0) * 1000)
        stmt = plans.get(label)
        plan = _plan(rt, stmt) if stmt else ["(no query)"]
        top = " | ".join(p.strip() for p in plan if "Scan" in p or "Index" in p)[:160]
        print(
            f"{label:<22}{statistics.median(page_times):>9.1f} {pct(page_times, 0.95):>9.1f}"
            f" {pct(api_times, 0.95):>9.1f}  {top}"
        )
        plans[label] = plan
    event.remove(rt.store.engine, "before_cursor_execute", capture)
    if args.explain:
        for label, plan in plans.items():
            print(f"\n-- EXPLAIN ANALYZE: {label}")
            print("\n".join(plan))
    del text


def _mid_id(rt: Any) -> str:
    from sqlalchemy import text

    with rt.store.engine.connect() as conn:
        return str(
            conn.execute(text("SELECT id FROM runs ORDER BY id OFFSET 500000 LIMIT 1")).scalar()
        )


def _api_query(page_query: str) -> str:
    from urllib.parse import parse_qsl, urlencode

    out: dict[str, list[str]] = {}
    for k, v in parse_qsl(page_query):
        name = {
            "status": "filter[status]",
            "task": "filter[taskIdentifier]",
            "tag": "filter[tag]",
            "cursor": "page[after]",
        }.get(k)
        if k == "q":
            name = "filter[batch]" if v.startswith("batch_") else "filter[idempotencyKey]"
        if k in ("from", "to"):
            from datetime import UTC, datetime

            ms = int(datetime.fromisoformat(v).replace(tzinfo=UTC).timestamp() * 1000)
            name, v = f"filter[createdAt][{k}]", str(ms)
        if name:
            out.setdefault(name, []).append(v)
    return urlencode({k: ",".join(v) for k, v in out.items()} | {"page[size]": "50"})


def _plan(rt: Any, stmt: tuple[str, Any]) -> list[str]:
    sql, params = stmt
    raw = rt.store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("EXPLAIN ANALYZE " + sql, params)
        return [r[0] for r in cur.fetchall()]
    finally:
        raw.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-trigger", action="store_true")
    ap.add_argument("--skip-list", action="store_true")
    ap.add_argument("--explain", action="store_true", help="print every full plan")
    ap.add_argument("--keep", action="store_true", help="keep the bench database")
    args = ap.parse_args()

    import runtime

    name, url = make_db()
    tag = uuid.uuid4().hex[:6]
    settings = {
        "database_url": url,
        "broker_url": AMQP,
        "default_queue": f"bench{tag}-default",
        "large_queue": f"bench{tag}-large",
        "encryption_key": "kCCJ9k0vAO3dFeMj6nCS0jzLCYyoXVmK8o0dyRu1Pzc=",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUSTER_")}
    env.update({f"BUSTER_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONPATH"] = str(ROOT)
    try:
        runtime.configure(**settings)
        if not args.skip_trigger:
            bench_trigger(args, env)
        if not args.skip_list:
            from sqlalchemy import text

            with runtime.get_runtime().store.engine.begin() as conn:
                conn.execute(text("TRUNCATE runs, run_tags CASCADE"))
            bench_list(args)
    finally:
        _cleanup_queues(settings)
        runtime.get_runtime().close()
        if not args.keep:
            drop_db(name)
        else:
            print(f"kept database {name}")
    return 0


def _cleanup_queues(settings: dict[str, Any]) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP))
    ch = conn.channel()
    for q in (settings["default_queue"], settings["large_queue"]):
        for suffix in ("", ".DQ", ".XQ"):
            ch.queue_delete(q + suffix)
    conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
