"""``POST /api/v1/tasks/{id}/trigger`` and the two-phase batch (``/api/v3/batches``)."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from runtime import ids
from runtime.durations import utcnow
from runtime.statuses import RunStatus
from runtime.store import dashboard as sql
from runtime.trigger import build_row, definition_cached

from ..auth import Principal
from ..state import Dash
from .common import REQUEST_KEY_HEADER, Reply, endpoint, json_body, object_body, once
from .errors import ApiError
from .options import (
    apply_request_key,
    decode_payload,
    parse_options,
    runtime_debounce,
    runtime_options,
    wire_key,
)
from .serialize import iso

# producers trigger by id without the task's code: known ids are cached (positive only, so
# a task whose worker boots later is found at once)
_KNOWN: dict[str, float] = {}
_KNOWN_TTL = 30.0


def _known_fresh(task_id: str) -> bool:
    hit = _KNOWN.get(task_id)
    return hit is not None and time.monotonic() - hit < _KNOWN_TTL


def require_task(d: Dash, task_id: str) -> None:
    if _known_fresh(task_id):
        return
    from runtime.task import get_task

    if get_task(task_id) is None and d.store.task_definition(task_id) is None:
        raise ApiError(404, f"Task not found: {task_id}")
    _KNOWN[task_id] = time.monotonic()


def _trigger_row(
    d: Dash, task_id: str, body: dict[str, Any], request_key: str | None
) -> tuple[dict[str, Any], bool]:
    """The run row a trigger request asks for (validated), and whether its idempotency key
    is the request's own (``x-trigger-request-idempotency-key``)."""
    require_task(d, task_id)
    wire = parse_options(body.get("options"))
    payload = decode_payload(body, wire.payloadType)
    row = build_row(d.rt, task_id, payload, runtime_options(wire), None)
    return row, apply_request_key(row, request_key)


def _known_here(d: Dash, task_id: str) -> bool:
    """Whether building the row needs no database read (the task is cached or local)."""
    return _known_fresh(task_id) and definition_cached(d.rt, task_id)


def _trigger_debounced(d: Dash, task_id: str, body: dict[str, Any]) -> Any:
    """A debounced trigger: starts a DELAYED run or pushes the one its key names
    (runtime/debounce.py), one transaction of its own, outside the group-committed
    inserts. A retried request pushes the same run again: the same answer."""
    from runtime.debounce import trigger_debounced

    require_task(d, task_id)
    wire = parse_options(body.get("options"))
    payload = decode_payload(body, wire.payloadType)
    options = {**runtime_options(wire), "debounce": runtime_debounce(wire)}
    return trigger_debounced(d.rt, task_id, payload, options, None)


@endpoint
async def trigger_task(request: Request, d: Dash, who: Principal) -> Reply:
    """Trigger a run of a task by id (``tasks.trigger``)."""
    task_id = unquote(request.path_params["task_id"])
    body = object_body(await json_body(request))
    key = request.headers.get(REQUEST_KEY_HEADER)
    options = body.get("options")
    if isinstance(options, dict) and options.get("debounce") is not None:
        handle = await run_in_threadpool(_trigger_debounced, d, task_id, body)
        return Reply({"id": handle.id, "isCached": bool(handle.is_cached)}, 200,
                     [f"read:runs:{handle.id}", f"write:inputStreams:{handle.id}"])
    if _known_here(d, task_id):  # CPU only: no thread hop
        row, by_request = _trigger_row(d, task_id, body, key)
    else:
        row, by_request = await run_in_threadpool(_trigger_row, d, task_id, body, key)
    handle = await d.triggers.submit(row)
    out: dict[str, Any] = {"id": handle.id}
    # a retry matched through the request key is the same answer, not a cached run
    out["isCached"] = bool(handle.is_cached and not by_request)
    return Reply(out, 200, [f"read:runs:{handle.id}", f"write:inputStreams:{handle.id}"])


# ---------------------------------------------------------------------- batches
def _create_batch_sync(d: Dash, body: dict[str, Any], request_key: str | None) -> Reply:
    count = body.get("runCount")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ApiError(400, "Invalid request body: runCount must be a positive integer")
    limit = d.rt.settings.max_batch_size
    if count > limit:
        raise ApiError(422, f"A batch holds at most {limit} runs, got runCount {count}")
    task_ids = body.get("taskIdentifiers") or []
    for task_id in task_ids:
        require_task(d, str(task_id))
    key = body.get("idempotencyKey")
    opts = body.get("idempotencyKeyOptions") or {}
    now = utcnow()
    row = {
        "id": ids.new_id("batch"),
        "run_count": count,
        "task_identifiers": list(task_ids),
        "request_key": (request_key or None) and request_key[:128],
        "idempotency_key": key,
        "idempotency_key_user": opts.get("key") if isinstance(opts, dict) else None,
        "created_at": now,
        "updated_at": now,
    }
    batch, created = sql.create_batch(d.store, row)
    # a batch found by its idempotency key is "cached" only once sealed: the SDK skips
    # sending items when cached, so an unsealed one must still receive its items
    cached = (not created) and bool(key) and batch["idempotency_key"] == key and batch["sealed"]
    out = {"id": batch["id"], "runCount": batch["run_count"], "isCached": bool(cached)}
    if batch["idempotency_key_user"]:
        out["idempotencyKey"] = batch["idempotency_key_user"]
    return Reply(out, 202, [f"read:batch:{batch['id']}"])


@endpoint
async def create_batch(request: Request, d: Dash, who: Principal) -> Reply:
    """Phase 1 of a batch trigger: declare how many runs will follow."""
    body = object_body(await json_body(request))
    key = request.headers.get(REQUEST_KEY_HEADER)
    return await run_in_threadpool(_create_batch_sync, d, body, key)


def _item_rows(d: Dash, batch: Any, lines: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """Validate every item before creating any: one bad line rejects the request (422) and
    nothing is created; the SDK's retry of a good stream is then deduped by index."""
    rows: list[tuple[int, dict[str, Any]]] = []
    now = utcnow()
    for n, item in enumerate(lines):
        if not isinstance(item, dict):
            raise ApiError(422, f"Invalid batch item on line {n + 1}: expected an object")
        index, task_id = item.get("index"), item.get("task")
        if not isinstance(index, int) or not 0 <= index < batch["run_count"]:
            raise ApiError(
                422, f"Invalid batch item on line {n + 1}: index must be 0–{batch['run_count'] - 1}"
            )
        if not isinstance(task_id, str):
            raise ApiError(422, f"Invalid batch item {index}: task is required")
        try:
            require_task(d, task_id)
        except ApiError:
            raise ApiError(422, f"Invalid batch item {index}: task not found: {task_id}") from None
        wire = parse_options(item.get("options"))
        opts = runtime_options(wire)
        if wire.idempotencyKey:
            opts["idempotency_key"] = wire_key(wire.idempotencyKey, wire.idempotencyKeyOptions)
        row = build_row(
            d.rt,
            task_id,
            decode_payload(item, wire.payloadType),
            opts,
            None,
            batch_id=batch["id"],
            trigger_function="batch_trigger",
            now=now,
        )
        rows.append((index, row))
    return rows


def _add_items_sync(d: Dash, batch_id: str, raw: bytes) -> Reply:
    batch = sql.get_batch(d.store, batch_id)
    if batch is None:
        raise ApiError(404, f"Batch not found: {batch_id}")
    lines = []
    for n, line in enumerate(raw.splitlines()):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"Malformed JSON on NDJSON line {n + 1}: {exc}") from None
    rows = _item_rows(d, batch, lines)
    accepted, deduped, sealed, inserted = sql.add_batch_items(d.store, batch_id, rows)
    fresh = {r["id"]: r for _, r in rows if r["id"] in inserted}
    publish = [(i, r["queue"]) for i, r in fresh.items() if r["status"] == RunStatus.QUEUED]
    if publish and d.rt.can_publish:
        # unconfirmed publishes stay unpublished in the store; the timer loop retries them
        d.store.mark_published(d.rt.publisher.publish(publish))
    body = {
        "id": batch_id,
        "itemsAccepted": accepted,
        "itemsDeduplicated": deduped,
        "sealed": sealed,
    }
    if not sealed:
        done = accepted + deduped
        body.update(enqueuedCount=done, expectedCount=batch["run_count"])
    return Reply(body, 200)


@endpoint
async def batch_items(request: Request, d: Dash, who: Principal) -> Reply:
    """Phase 2: the items as NDJSON; re-sent streams are deduped by item index."""
    ctype = request.headers.get("content-type", "")
    if "ndjson" not in ctype and "json" not in ctype:
        raise ApiError(415, "Expected Content-Type application/x-ndjson")
    raw = await request.body()
    return await run_in_threadpool(_add_items_sync, d, request.path_params["batch_id"], raw)


def _batch_sync(d: Dash, batch_id: str) -> Reply:
    batch = sql.get_batch(d.store, batch_id)
    run_ids = sql.batch_run_ids(d.store, batch_id)
    if batch is None:
        bounds = sql.batch_bounds(d.store, batch_id)
        if bounds is None:
            raise ApiError(404, f"Batch not found: {batch_id}")
        created, updated, count, sealed = (
            bounds["created_at"],
            bounds["updated_at"],
            bounds["n"],
            True,
        )
        key = None
    else:
        created, updated, count, sealed = (
            batch["created_at"],
            batch["updated_at"],
            batch["run_count"],
            batch["sealed"],
        )
        key = batch["idempotency_key_user"]
    processing: dict[str, Any] = {"errors": []}
    if sealed and batch is not None and batch["sealed_at"] is not None:
        processing["completedAt"] = iso(batch["sealed_at"])
    body: dict[str, Any] = {
        "id": batch_id,
        "status": "COMPLETED" if sealed else "PENDING",
        "createdAt": iso(created),
        "updatedAt": iso(updated),
        "runCount": count,
        "runs": run_ids,
        "processing": processing,
    }
    if key:
        body["idempotencyKey"] = key
    return Reply(body)


@endpoint
async def retrieve_batch(request: Request, d: Dash, who: Principal) -> Reply:
    """A batch and its run ids (``batch.retrieve``)."""
    return await run_in_threadpool(_batch_sync, d, request.path_params["batch_id"])


# `once` guards create-style calls elsewhere; triggers dedupe through the run's unique key
__all__ = ["batch_items", "create_batch", "once", "retrieve_batch", "trigger_task"]
