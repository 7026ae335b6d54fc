"""Task queues (``queues.list/retrieve/pause/resume/overrideConcurrencyLimit/
resetConcurrencyLimit``) over ``runtime.queues``. A queue is named in the path by its id
(``queue_<task id>``) or, with ``type: "task"`` in the body or query, by the task id."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..auth import Principal
from ..state import Dash
from .common import Reply, endpoint, json_body, object_body
from .errors import ApiError
from .serialize import queue_object


def _queue_param(request: Request, kind: Any) -> Any:
    name = request.path_params["queue"]
    kind = kind or "id"
    if kind == "id":
        if not name.startswith("queue_"):
            raise ApiError(404, f"Queue not found: {name!r} (ids start with queue_; "
                           "name a task's queue with type \"task\")")
        return name
    if kind not in ("task", "custom"):
        raise ApiError(400, "Invalid request: type must be one of id, task, custom")
    return {"type": kind, "name": name}


async def _body(request: Request) -> dict[str, Any]:
    return object_body(await json_body(request))


def _by(who: Principal) -> str:
    return f"api:{who.name}"


@endpoint
async def list_queues(request: Request, d: Dash, who: Principal) -> Reply:
    from runtime import queues

    items = await run_in_threadpool(queues.list)
    return Reply({"data": [queue_object(q) for q in items],
                  "pagination": {"currentPage": 1, "totalPages": 1, "count": len(items)}})


@endpoint
async def retrieve_queue(request: Request, d: Dash, who: Principal) -> Reply:
    from runtime import queues

    param = _queue_param(request, request.query_params.get("type"))
    return Reply(queue_object(await run_in_threadpool(queues.retrieve, param)))


@endpoint
async def pause_queue(request: Request, d: Dash, who: Principal) -> Reply:
    """Pause (no new run starts; executing runs finish) or resume a task's queue."""
    from runtime import queues

    body = await _body(request)
    param = _queue_param(request, body.get("type"))
    action = body.get("action")
    if action not in ("pause", "resume"):
        raise ApiError(400, "Invalid request body: action must be \"pause\" or \"resume\"")
    fn = queues.pause if action == "pause" else queues.resume
    q = await run_in_threadpool(lambda: fn(param, by=_by(who)))
    return Reply(queue_object(q))


def _limit(body: dict[str, Any], field: str) -> int | None:
    limit = body.get(field)
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100_000:
        raise ApiError(422, f"Invalid request body: {field} must be an integer "
                       "from 0 to 100000")
    return limit


@endpoint
async def override_concurrency(request: Request, d: Dash, who: Principal) -> Reply:
    """Trigger.dev's ``concurrencyLimit`` override, and ours of the task's total over all
    its concurrency keys, ``totalConcurrencyLimit`` (either or both)."""
    from runtime import queues

    body = await _body(request)
    param = _queue_param(request, body.get("type"))
    limit = _limit(body, "concurrencyLimit")
    total = _limit(body, "totalConcurrencyLimit")
    if limit is None and total is None:
        raise ApiError(422, "Invalid request body: concurrencyLimit (or "
                       "totalConcurrencyLimit) must be an integer from 0 to 100000")

    def apply() -> Any:
        q = None
        if limit is not None:
            q = queues.override_concurrency_limit(param, limit, by=_by(who))
        if total is not None:
            q = queues.override_total_concurrency_limit(param, total, by=_by(who))
        return q

    return Reply(queue_object(await run_in_threadpool(apply)))


@endpoint
async def reset_concurrency(request: Request, d: Dash, who: Principal) -> Reply:
    from runtime import queues

    body = await _body(request)
    param = _queue_param(request, body.get("type"))
    return Reply(queue_object(await run_in_threadpool(queues.reset_concurrency_limit, param)))
