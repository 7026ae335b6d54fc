"""Bulk actions in the background over HTTP (runtime/bulk_actions.py): Trigger.dev's
``runs.bulk.*``. ``POST /api/v1/bulk-actions`` starts one (202) that the workers work
through; ``GET`` one for its progress, ``POST …/abort`` to stop it."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from runtime import bulk_actions

from ..auth import Principal
from ..state import Dash
from .common import Reply, endpoint, json_body, object_body, once
from .errors import ApiError
from .runs import bulk_request
from .serialize import camel

_KEYS = {"action", "filter", "runIds", "name"}


def bulk_object(action: bulk_actions.BulkAction) -> dict[str, Any]:
    doc = camel(action.to_dict())
    doc["filter"] = doc.pop("filters")  # the request's name for it
    return doc


def _create(who: Principal, body: dict[str, Any]) -> Reply:
    kind, run_ids, filters = bulk_request(body, _KEYS)
    start = bulk_actions.cancel if kind == "cancel" else bulk_actions.replay
    try:
        action = start(run_ids, name=body.get("name"), by=f"api:{who.name}", **filters)
    except ValueError as exc:  # no filter, both, a bad status or period
        raise ApiError(400, str(exc)) from None
    return Reply(bulk_object(action), 202)


@endpoint
async def create_bulk_action(request: Request, d: Dash, who: Principal) -> Reply:
    body = object_body(await json_body(request))
    return await once(request, d, "bulk-action",
                      lambda: run_in_threadpool(_create, who, body))


@endpoint
async def list_bulk_actions(request: Request, d: Dash, who: Principal) -> Reply:
    items = await run_in_threadpool(bulk_actions.list, 50)
    return Reply({"data": [bulk_object(a) for a in items]})


def _one(request: Request, fn: Any) -> Any:
    try:
        return fn(request.path_params["bulk_id"])
    except bulk_actions.BulkActionNotFoundError as exc:
        raise ApiError(404, str(exc)) from None


@endpoint
async def retrieve_bulk_action(request: Request, d: Dash, who: Principal) -> Reply:
    action = await run_in_threadpool(_one, request, bulk_actions.retrieve)
    return Reply(bulk_object(action))


@endpoint
async def abort_bulk_action(request: Request, d: Dash, who: Principal) -> Reply:
    action = await run_in_threadpool(_one, request, bulk_actions.abort)
    return Reply(bulk_object(action))
