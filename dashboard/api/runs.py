"""Runs: retrieve, list, cancel, replay (one, or every run a filter matches), reschedule,
and the realtime SSE stream."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from runtime import bulk, secrets
from runtime import runs as rruns
from runtime.errors import InvalidTriggerOptionsError, RunNotFoundError
from runtime.statuses import RunStatus
from runtime.store import tables as t

from ..auth import Principal, bearer
from ..state import Dash, dash
from .common import Reply, endpoint, json_body, object_body, once
from .errors import ApiError
from .serialize import list_item, run_object

log = logging.getLogger("buster.dashboard.api")

# list pages read only what an item shows: never the payload or output
LIST_COLUMNS = [
    c for c in t.runs.c if c.name not in ("payload", "output", "retry", "metadata", "error")
] + [t.runs.c.error]


def _get(d: Dash, run_id: str) -> Any:
    row = d.store.get_run(run_id)
    if row is None:
        raise ApiError(404, f"Run not found: {run_id}")
    return row


def full_run(d: Dash, run_id: str) -> dict[str, Any]:
    row = _get(d, run_id)
    store = d.store
    parent = store.get_run(row["parent_id"]) if row["parent_id"] else None
    root = store.get_run(row["root_id"]) if row["root_id"] else None
    return run_object(row, parent=parent, root=root, children=store.children(run_id))


@endpoint
async def retrieve_run(request: Request, d: Dash, who: Principal) -> Reply:
    """A run with payload, output, error and related runs (``runs.retrieve``)."""
    return Reply(await run_in_threadpool(full_run, d, request.path_params["run_id"]))


def time_cursor(cursor: str | None, created_to: datetime | None) -> str | None:
    """Run ids start with their creation time (sortable ULIDs), so an upper time bound is
    also an id bound: starting the newest-first index walk there skips every newer row
    instead of filtering them one by one (a past time window stays an index range)."""
    if created_to is None:
        return cursor
    from runtime.ids import timestamp_prefix

    bound = "run_" + timestamp_prefix(int(created_to.timestamp() * 1000))
    return bound if cursor is None or bound < cursor else cursor


def _csv(value: str | None) -> list[str] | None:
    return [v for v in value.split(",") if v] if value else None


def _epoch(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except ValueError:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, f"Invalid date filter {value!r}: use epoch ms") from None


def list_filters(q: Any) -> dict[str, Any]:
    """``filter[...]`` query parameters as the SDK sends them → ``runs.list`` filters."""
    statuses = _csv(q.get("filter[status]"))
    for s in statuses or []:
        if s not in RunStatus.__members__:
            raise ApiError(400, f"Invalid status filter {s!r}")
    period = q.get("filter[createdAt][period]")
    return {
        "status": statuses,
        "task": _csv(q.get("filter[taskIdentifier]")),
        "tag": _csv(q.get("filter[tag]")),
        "batch": q.get("filter[batch]") or None,
        "schedule": q.get("filter[schedule]") or None,
        "idempotency_key": q.get("filter[idempotencyKey]") or None,
        # the concurrency queue (Trigger.dev's queue filter): a task's id (also as
        # "task/<id>", their name for it) or a shared queue's name
        "concurrency_queue": [v.removeprefix("task/") for v in
                              _csv(q.get("filter[queue]")) or []] or None,
        "created_from": _epoch(q.get("filter[createdAt][from]")),
        "created_to": _epoch(q.get("filter[createdAt][to]")),
        "period": period or None,
    }


def _list_sync(d: Dash, q: Any) -> Reply:
    filters = list_filters(q)
    try:
        size = int(q.get("page[size]") or 25)
    except ValueError:
        raise ApiError(400, "page[size] must be an integer") from None
    if not 1 <= size <= 100:
        raise ApiError(400, "page[size] must be between 1 and 100")
    period = filters.pop("period")
    if period:
        from datetime import timedelta

        from runtime.durations import parse_duration, utcnow

        try:
            filters["created_from"] = utcnow() - timedelta(seconds=parse_duration(period) or 0)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
    rows = d.store.list_runs(
        statuses=filters["status"],
        tasks=filters["task"],
        tags=filters["tag"],
        created_from=filters["created_from"],
        created_to=filters["created_to"],
        batch_id=filters["batch"],
        schedule_id=filters["schedule"],
        idempotency_key=filters["idempotency_key"],
        queues=filters["concurrency_queue"],
        cursor=time_cursor(q.get("page[after]") or None, filters["created_to"]),
        limit=size + 1,
        columns=LIST_COLUMNS,
    )
    more = len(rows) > size
    rows = rows[:size]
    pagination: dict[str, str] = {}
    if more and rows:
        pagination["next"] = rows[-1]["id"]
    return Reply({"data": [list_item(r) for r in rows], "pagination": pagination})


@endpoint
async def list_runs(request: Request, d: Dash, who: Principal) -> Reply:
    """Runs newest first with ``filter[...]`` and ``page[size]``/``page[after]``."""
    return await run_in_threadpool(_list_sync, d, request.query_params)


def _cancel_sync(d: Dash, run_id: str) -> Reply:
    try:
        rruns.cancel(run_id)
    except RunNotFoundError:
        raise ApiError(404, f"Run not found: {run_id}") from None
    return Reply({"id": run_id})


@endpoint
async def cancel_run(request: Request, d: Dash, who: Principal) -> Reply:
    """Cancel a run and its unfinished children; a finished run is left as it is."""
    return await run_in_threadpool(_cancel_sync, d, request.path_params["run_id"])


_REPLAY_KEYS = {
    "payload",
    "payloadType",
    "metadata",
    "tags",
    "queue",
    "concurrencyKey",
    "machine",
    "version",
    "region",
    "delay",
    "ttl",
    "idempotencyKey",
    "idempotencyKeyTTL",
    "maxAttempts",
    "maxDuration",
    "priority",
}


def _replay_sync(d: Dash, run_id: str, body: dict[str, Any]) -> Reply:
    unknown = set(body) - _REPLAY_KEYS
    if unknown:
        raise ApiError(400, f"Invalid request body: unknown key(s) {', '.join(sorted(unknown))}")
    _get(d, run_id)
    payload = None
    if "payload" in body:
        from ..superjson import PacketError, decode_packet

        try:
            payload = decode_packet(body["payload"], body.get("payloadType"))
        except PacketError as exc:
            raise ApiError(400, str(exc)) from None
    tags = body.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    # a null override keeps the original payload (the runtime's replay has no "set to null")
    handle = rruns.replay(run_id, payload=payload, tags=tags)
    return Reply({"id": handle.id}, 200, [f"read:runs:{handle.id}"])


@endpoint
async def replay_run(request: Request, d: Dash, who: Principal) -> Reply:
    """A new run of the same task with the same payload (or the overrides given)."""
    run_id = request.path_params["run_id"]
    body = object_body(await json_body(request))
    return await once(
        request, d, f"replay:{run_id}", lambda: run_in_threadpool(_replay_sync, d, run_id, body)
    )


def _reschedule_sync(d: Dash, run_id: str, body: dict[str, Any]) -> Reply:
    _get(d, run_id)
    delay = body.get("delay")
    if not isinstance(delay, str | int) or isinstance(delay, bool):
        raise ApiError(400, "Invalid request body: delay is required (a duration or ISO date)")
    try:
        rruns.reschedule(run_id, delay)
    except ValueError as exc:
        if isinstance(exc, InvalidTriggerOptionsError):
            raise ApiError(422, "Cannot reschedule a run that is not delayed") from None
        raise ApiError(400, f"Invalid delay: {exc}") from None
    return Reply(full_run(d, run_id))


@endpoint
async def reschedule_run(request: Request, d: Dash, who: Principal) -> Reply:
    """Move a DELAYED run's start; returns the run."""
    run_id = request.path_params["run_id"]
    body = object_body(await json_body(request))
    return await run_in_threadpool(_reschedule_sync, d, run_id, body)


# ---------------------------------------------------------------------- bulk actions
_BULK_KEYS = {"action", "filter", "runIds", "maxRuns", "dryRun", "after"}
_BULK_FILTERS = {"status", "taskIdentifier", "tag", "batch", "schedule", "idempotencyKey",
                 "createdAt", "queue"}
# One request walks at most this many runs unless it asks for more (up to the SDK's
# 10,000): a thousand replays take seconds, ten thousand may outlast a proxy's timeout.
# `next` continues where a truncated call stopped.
BULK_DEFAULT_MAX_RUNS = 1_000


def _strings(name: str, value: Any) -> str | None:
    """A filter given as a string (comma-separated, as in the query string) or a list of
    strings → the query string's comma-separated form."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) and "," not in v for v in value):
        return ",".join(value)
    raise ApiError(400, f"Invalid filter.{name}: a string or a list of strings (without "
                   "commas: a comma separates values, as in the query string)")


def body_filters(value: Any) -> dict[str, Any]:
    """A bulk request's ``filter`` object (the names of ``filter[...]``) → the filters of
    ``runs.list``, checked as the list endpoint checks its query string."""
    f = object_body({} if value is None else value)
    unknown = set(f) - _BULK_FILTERS
    if unknown:
        raise ApiError(400, f"Invalid filter: unknown key(s) {', '.join(sorted(unknown))}")
    created = f.get("createdAt") or {}
    if not isinstance(created, dict) or set(created) - {"from", "to", "period"}:
        raise ApiError(400, "Invalid filter.createdAt: an object of from, to, period")
    q: dict[str, Any] = {f"filter[{k}]": _strings(k, f.get(k)) for k in (
        "status", "taskIdentifier", "tag", "batch", "schedule", "idempotencyKey", "queue")}
    for part in ("from", "to", "period"):
        v = created.get(part)
        if v is not None and (isinstance(v, bool) or not isinstance(v, str | int)):
            raise ApiError(400, f"Invalid filter.createdAt.{part}: {v!r}")
        q[f"filter[createdAt][{part}]"] = None if v is None else str(v)
    return list_filters(q)


def bulk_request(body: dict[str, Any], keys: set[str]
                 ) -> tuple[bulk.BulkAction, list[str] | None, dict[str, Any]]:
    """A bulk request's action, run ids and filters (``runs.list``'s keywords), checked;
    also the background bulk actions' (dashboard/api/bulk_actions.py)."""
    unknown = set(body) - keys
    if unknown:
        raise ApiError(400, f"Invalid request body: unknown key(s) {', '.join(sorted(unknown))}")
    action = body.get("action")
    if action not in ("cancel", "replay"):
        raise ApiError(400, "Invalid request body: action must be 'cancel' or 'replay'")
    run_ids = body.get("runIds")
    if run_ids is not None and (not isinstance(run_ids, list)
                                or not all(isinstance(i, str) for i in run_ids)):
        raise ApiError(400, "Invalid request body: runIds is a list of run ids")
    return action, run_ids, body_filters(body.get("filter"))


def _bulk_sync(d: Dash, who: Principal, body: dict[str, Any]) -> Reply:
    action, run_ids, filters = bulk_request(body, _BULK_KEYS)
    if run_ids is None and not any(filters.values()):
        raise ApiError(400, "A bulk action needs a filter (status, taskIdentifier, tag, batch,"
                       " schedule, idempotencyKey, queue or createdAt) or runIds: it never "
                       "acts on every run")
    max_runs = body.get("maxRuns", BULK_DEFAULT_MAX_RUNS)
    if (isinstance(max_runs, bool) or not isinstance(max_runs, int)
            or not 1 <= max_runs <= bulk.DEFAULT_MAX_RUNS):
        raise ApiError(400, f"maxRuns must be an integer from 1 to {bulk.DEFAULT_MAX_RUNS}")
    dry_run = body.get("dryRun", False)
    after = body.get("after")
    if not isinstance(dry_run, bool) or not (after is None or isinstance(after, str)):
        raise ApiError(400, "Invalid request body: dryRun is a boolean, after a run id")
    try:
        result = bulk.apply(d.store, action, bulk.filters_of(**filters), max_runs=max_runs,
                            dry_run=dry_run, after=after, run_ids=run_ids)
    except ValueError as exc:  # a bad period or cursor, ids and a filter, too many ids
        raise ApiError(400, str(exc)) from None
    if not dry_run:
        log.info("bulk %s of %d runs", action, result.count, extra={
            "action": f"bulk_{action}", "count": result.count, "by": who.name,
            "truncated": result.truncated})
    return Reply({"action": action, "count": result.count, "runIds": result.run_ids,
                  "truncated": result.truncated, "dryRun": dry_run, "next": result.next,
                  "notFound": result.not_found})


@endpoint
async def bulk_runs(request: Request, d: Dash, who: Principal) -> Reply:
    """Cancel or replay every run a filter matches (runtime/bulk.py), newest first, at most
    ``maxRuns``; a truncated answer's ``next``, sent back as ``after``, goes on."""
    body = object_body(await json_body(request))
    return await once(request, d, "bulk", lambda: run_in_threadpool(_bulk_sync, d, who, body))


# ---------------------------------------------------------------------- realtime (SSE)
def snapshot(d: Dash, run_id: str, after_log: int) -> tuple[dict[str, Any], int]:
    """What a live view needs: status, metadata, output/error, new log lines."""
    from runtime.store import dashboard as sql

    row = _get(d, run_id)
    logs = sql.logs_after(d.store, run_id, after_log)
    data = {
        "id": row["id"],
        "status": row["status"],
        "metadata": secrets.mask(row["metadata"] or {}),
        "output": secrets.mask(row["output"]),
        "error": row["error"],
        "attemptCount": row["attempt_count"],
        "durationMs": row["execution_ms"],
        "updatedAt": row["updated_at"].isoformat(),
        "logs": [
            {
                "id": r["id"],
                "level": r["level"],
                "message": r["message"],
                "ts": r["ts"].isoformat(),
                "attributes": secrets.mask(r["attributes"]),
            }
            for r in logs
        ],
    }
    return data, (logs[-1]["id"] if logs else after_log)


async def run_events(d: Dash, run_id: str, request: Request) -> AsyncIterator[str]:
    """Server-Sent Events: one ``run`` event per change, until the run is final."""
    last_log, last_sent = 0, ""
    while not await request.is_disconnected():
        data, last_log = await run_in_threadpool(snapshot, d, run_id, last_log)
        text = json.dumps(data, default=str)
        if data["logs"] or text != last_sent:
            last_sent = text
            yield f"event: run\ndata: {text}\n\n"
        if RunStatus(data["status"]).is_final:
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(d.settings.live_interval_seconds)


async def realtime_run(request: Request) -> Response:
    """``GET /api/v1/runs/{id}/stream`` (bearer): our realtime endpoint, like Trigger.dev's
    ``runs.subscribeToRun`` but as plain SSE (the SDK's Electric protocol is not served)."""
    d = dash(request)
    key = bearer(request.headers)
    if not key or await run_in_threadpool(d.keys.lookup, key) is None:
        return ApiError(401, "Invalid or missing API key").response()
    run_id = request.path_params["run_id"]
    if await run_in_threadpool(d.store.get_run, run_id) is None:
        return ApiError(404, f"Run not found: {run_id}").response()
    return sse(run_events(d, run_id, request))


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
