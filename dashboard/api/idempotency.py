"""``POST /api/v1/idempotencyKeys/{key}/reset``: free a key so the next trigger runs anew."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..auth import Principal
from ..state import Dash
from .common import Reply, endpoint, json_body, object_body
from .errors import ApiError


@endpoint
async def reset_key(request: Request, d: Dash, who: Principal) -> Reply:
    """The SDK sends the key already hashed, with ``{"taskIdentifier": …}``."""
    key = unquote(request.path_params["key"])
    body = object_body(await json_body(request))
    task_id = body.get("taskIdentifier")
    if not isinstance(task_id, str) or not task_id:
        raise ApiError(400, "Invalid request body: taskIdentifier is required")
    n = await run_in_threadpool(d.store.reset_idempotency_key, task_id, key)
    if not n:
        raise ApiError(404, f"No run of task {task_id} holds that idempotency key")
    return Reply({"id": key})
