"""Imperative cron schedules (``schedules.create/retrieve/list/update/del/activate/
deactivate``) over ``runtime.schedules``. A bad cron or timezone is a 422 and creates
nothing: the runtime validates before it writes."""

from __future__ import annotations

import math
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..auth import Principal
from ..state import Dash
from .common import Reply, endpoint, json_body, object_body, once
from .errors import ApiError
from .serialize import schedule_object


def _api() -> Any:
    from runtime import schedules

    if not hasattr(schedules, "create"):
        raise ApiError(501, "Imperative schedules are not available in this build")
    return schedules


def _str(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"Invalid request body: {key} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"Invalid request body: {key} must be a non-empty string")
    return value


def _create_sync(body: dict[str, Any]) -> Reply:
    task = _str(body, "task", True)
    cron = _str(body, "cron", True)
    dedup = _str(body, "deduplicationKey", True)
    s = _api().create(
        task=task,
        cron=cron,
        timezone=_str(body, "timezone") or "UTC",
        external_id=_str(body, "externalId"),
        deduplication_key=dedup,
    )
    return Reply(schedule_object(s))


@endpoint
async def create_schedule(request: Request, d: Dash, who: Principal) -> Reply:
    """Create (or, with the same deduplicationKey, update) a schedule."""
    body = object_body(await json_body(request))
    return await once(request, d, "schedule:create", lambda: run_in_threadpool(_create_sync, body))


@endpoint
async def retrieve_schedule(request: Request, d: Dash, who: Principal) -> Reply:
    s = await run_in_threadpool(_api().retrieve, request.path_params["schedule_id"])
    return Reply(schedule_object(s))


def _list_sync(q: Any) -> Reply:
    try:
        page = max(1, int(q.get("page") or 1))
        per_page = min(100, max(1, int(q.get("perPage") or 10)))
    except ValueError:
        raise ApiError(400, "page and perPage must be integers") from None
    api = _api()
    everything, cursor = [], None
    while True:  # offset pagination on the wire, keyset pages underneath
        chunk = api.list(cursor=cursor, limit=100)
        everything += list(chunk.data)
        cursor = chunk.next_cursor
        if cursor is None or len(everything) >= page * per_page + 1000:
            break
    start = (page - 1) * per_page
    items = everything[start : start + per_page]
    return Reply(
        {
            "data": [schedule_object(s) for s in items],
            "pagination": {
                "currentPage": page,
                "totalPages": max(1, math.ceil(len(everything) / per_page)),
                "count": len(everything),
            },
        }
    )


@endpoint
async def list_schedules(request: Request, d: Dash, who: Principal) -> Reply:
    return await run_in_threadpool(_list_sync, request.query_params)


def _update_sync(schedule_id: str, body: dict[str, Any]) -> Reply:
    _str(body, "task", True)
    cron = _str(body, "cron", True)
    kwargs: dict[str, Any] = {"cron": cron}
    if "timezone" in body:
        kwargs["timezone"] = _str(body, "timezone") or "UTC"
    if "externalId" in body:
        kwargs["external_id"] = _str(body, "externalId")
    return Reply(schedule_object(_api().update(schedule_id, **kwargs)))


@endpoint
async def update_schedule(request: Request, d: Dash, who: Principal) -> Reply:
    body = object_body(await json_body(request))
    return await run_in_threadpool(_update_sync, request.path_params["schedule_id"], body)


@endpoint
async def delete_schedule(request: Request, d: Dash, who: Principal) -> Reply:
    s = await run_in_threadpool(_api().delete, request.path_params["schedule_id"])
    return Reply({"id": s.id})


@endpoint
async def activate_schedule(request: Request, d: Dash, who: Principal) -> Reply:
    s = await run_in_threadpool(_api().activate, request.path_params["schedule_id"])
    return Reply(schedule_object(s))


@endpoint
async def deactivate_schedule(request: Request, d: Dash, who: Principal) -> Reply:
    s = await run_in_threadpool(_api().deactivate, request.path_params["schedule_id"])
    return Reply(schedule_object(s))


@endpoint
async def timezones(request: Request, d: Dash, who: Principal) -> Reply:
    import zoneinfo

    names = sorted(zoneinfo.available_timezones())
    if request.query_params.get("excludeUtc") == "true":
        names = [n for n in names if n not in ("UTC", "Etc/UTC")]
    return Reply({"timezones": names})
