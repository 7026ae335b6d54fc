"""``/healthz`` (process up), ``/readyz`` (store reachable), ``/metrics`` (Prometheus)."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from runtime import run_webhooks
from runtime.store import dashboard as sql

from .queues import queue_depths
from .state import Dash, dash

log = logging.getLogger("buster.dashboard")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _ping(d: Dash) -> None:
    with d.store.autocommit.connect() as conn:
        conn.execute(text("SELECT 1"))


async def readyz(request: Request) -> Response:
    try:
        await run_in_threadpool(_ping, dash(request))
    except Exception as exc:  # any store failure means not ready; say which, not why in full
        log.warning("readiness check failed: %s", type(exc).__name__)
        return JSONResponse({"status": "unavailable", "store": type(exc).__name__}, 503)
    return JSONResponse({"status": "ok", "store": "ok"})


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def render_metrics(d: Dash) -> str:
    lines: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict, float]]) -> None:
        lines.append(f"# HELP {name} {help_}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{inner}}} {value}" if inner else f"{name} {value}")

    store = d.store
    counts = sql.runs_by_task_status(store)
    metric(
        "buster_runs",
        "gauge",
        "Runs in the store by task and status.",
        [({"task": r["task_identifier"], "status": r["status"]}, r["n"]) for r in counts],
    )
    waiting = sum(r["n"] for r in counts if r["status"] == "WAITING")
    metric("buster_runs_waiting", "gauge", "Runs suspended on a waitpoint.", [({}, waiting)])
    durs = sql.durations_by_task(store, sql.since(1))
    metric(
        "buster_run_execution_seconds_sum",
        "gauge",
        "Execution seconds of runs finished in the last hour, by task.",
        [({"task": r["task_identifier"]}, r["total_ms"] / 1000) for r in durs],
    )
    metric(
        "buster_run_execution_count",
        "gauge",
        "Runs finished in the last hour, by task.",
        [({"task": r["task_identifier"]}, r["n"]) for r in durs],
    )
    stats = sql.task_stats(store, sql.since(24))
    metric(
        "buster_run_execution_seconds",
        "gauge",
        "Execution time quantiles of finished runs over the last day, by task.",
        [
            ({"task": tid, "quantile": q}, float(s[key] or 0) / 1000)
            for tid, s in stats.items()
            for q, key in (("0.5", "p50"), ("0.95", "p95"))
        ],
    )
    depths = queue_depths(d)
    metric(
        "buster_queue_ready",
        "gauge",
        "Messages ready in each RabbitMQ queue.",
        [({"queue": q["name"]}, q["ready"]) for q in depths if q["ready"] is not None],
    )
    metric(
        "buster_queue_unacked",
        "gauge",
        "Messages delivered and not yet acknowledged (management API, if configured).",
        [({"queue": q["name"]}, q["unacked"]) for q in depths if q["unacked"] is not None],
    )
    metric(
        "buster_timer_lag_seconds",
        "gauge",
        "Age of the oldest due delay or wait the timer loop has not acted on yet.",
        [({}, sql.timer_lag_seconds(store))],
    )
    metric(
        "buster_runs_waiting_for_undeclared_queue",
        "gauge",
        "PENDING_VERSION runs whose trigger named a queue no task, worker or queue() "
        "declares, by that name.",
        [({"queue": q}, n) for q, n in sql.waiting_for_queue(store).items()],
    )
    holds, waiting_for_slot = sql.queue_holds_and_slot_waits(store)
    metric(
        "buster_task_queue_paused",
        "gauge",
        "1 for each concurrency queue paused (no new run in it starts); task: the task's "
        "id, or a shared queue's name.",
        [({"task": h["task_identifier"]}, 1) for h in holds if h["paused"]],
    )
    metric(
        "buster_task_queue_concurrency_override",
        "gauge",
        "A queue's concurrency limit (per key) as overridden at runtime.",
        [({"task": h["task_identifier"]}, h["concurrency_limit"])
         for h in holds if h["concurrency_limit"] is not None],
    )
    metric(
        "buster_runs_waiting_for_slot",
        "gauge",
        "QUEUED runs waiting for a concurrency slot (or for their paused queue), by task "
        "(or shared queue).",
        [({"task": q}, n) for q, n in sorted(waiting_for_slot.items())],
    )
    metric(
        "buster_run_webhook_deliveries",
        "gauge",
        "Run webhook deliveries kept, by endpoint and status (pending, delivered, failed).",
        [({"endpoint": e, "status": s}, n) for e, s, n in run_webhooks.delivery_counts(store)],
    )
    online = store.workers_online(d.settings.worker_online_seconds)
    metric(
        "buster_workers_online", "gauge", "Workers with a recent heartbeat.", [({}, len(online))]
    )
    return "\n".join(lines) + "\n"


async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(render_metrics, dash(request))
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")
