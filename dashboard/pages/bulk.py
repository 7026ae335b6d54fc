"""The Bulk actions page: cancels and replays in the background (runtime/bulk_actions.py),
with their progress and an Abort button."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime import bulk_actions

from ..auth import Principal
from .render import render
from .session import page


@page
async def bulk_actions_page(request: Request, who: Principal) -> Response:
    actions = await run_in_threadpool(bulk_actions.list, 100)
    return render(request, who, "bulk_actions.html", actions=actions,
                  message=request.query_params.get("message"))


@page
async def bulk_action_abort(request: Request, who: Principal) -> Response:
    action_id = request.path_params["bulk_id"]
    try:
        action = await run_in_threadpool(bulk_actions.abort, action_id)
        message = f"{action.id}: {action.status}"
    except bulk_actions.BulkActionNotFoundError as exc:
        message = str(exc)
    return RedirectResponse(f"/bulk-actions?{urlencode({'message': message})}", 303)
