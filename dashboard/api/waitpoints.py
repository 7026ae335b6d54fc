"""Wait tokens: create, complete, retrieve, and the HTTP callback URL external systems
POST to (authenticated by the HMAC in its path, as Trigger.dev's)."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime import secrets
from runtime.errors import TokenNotFoundError
from runtime.waits import complete_token, create_token, retrieve_token

from ..auth import Principal
from ..state import Dash, dash
from .common import Reply, endpoint, json_body, object_body, once
from .errors import ApiError
from .serialize import iso


def callback_url(d: Dash, request: Request, token_id: str) -> str:
    base = d.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return f"{base}/api/v1/waitpoints/tokens/{token_id}/callback/{d.callbacks.mac(token_id)}"


def _create_sync(d: Dash, request: Request, body: dict[str, Any]) -> Reply:
    tags = body.get("tags")
    if isinstance(tags, str):
        tags = [tags]
    key = body.get("idempotencyKey")
    if key is not None and (not isinstance(key, str) or len(key) > 2048):
        raise ApiError(400, "Invalid request body: idempotencyKey must be a string ≤ 2048")
    try:
        token = create_token(
            timeout=body.get("timeout"),
            idempotency_key=key,
            idempotency_key_ttl=body.get("idempotencyKeyTTL"),
            tags=tags,
        )
    except ValueError as exc:
        raise ApiError(400, f"Invalid request body: {exc}") from None
    out = {"id": token.id, "isCached": token.is_cached, "url": callback_url(d, request, token.id)}
    return Reply(out, 200, [f"write:waitpoints:{token.id}"])


@endpoint
async def create_wait_token(request: Request, d: Dash, who: Principal) -> Reply:
    """A token a run can wait on (``wait.createToken``)."""
    body = object_body(await json_body(request))
    return await once(
        request, d, "token:create", lambda: run_in_threadpool(_create_sync, d, request, body)
    )


def _complete_sync(d: Dash, token_id: str, data: Any) -> Reply:
    try:
        complete_token(token_id, data)
    except TokenNotFoundError:
        raise ApiError(404, f"Waitpoint token not found: {token_id}") from None
    return Reply({"success": True})  # completing twice is not an error (idempotent)


@endpoint
async def complete_wait_token(request: Request, d: Dash, who: Principal) -> Reply:
    """Complete a token with JSON ``data``; the waiting run resumes."""
    body = object_body(await json_body(request))
    return await run_in_threadpool(
        _complete_sync, d, request.path_params["token_id"], body.get("data")
    )


def _retrieve_sync(d: Dash, request: Request, token_id: str) -> Reply:
    try:
        wp = retrieve_token(token_id)
    except TokenNotFoundError:
        raise ApiError(404, f"Waitpoint token not found: {token_id}") from None
    out: dict[str, Any] = {
        "id": wp["id"],
        "url": callback_url(d, request, wp["id"]),
        "status": wp["status"] if wp["status"] in ("WAITING", "COMPLETED") else "TIMED_OUT",
        "tags": list(wp.get("tags") or []),
        "createdAt": iso(wp["created_at"]),
    }
    if wp.get("completed_at"):
        out["completedAt"] = iso(wp["completed_at"])
    if wp.get("due_at"):
        out["timeoutAt"] = iso(wp["due_at"])
    if wp.get("idempotency_key"):
        out["idempotencyKey"] = wp["idempotency_key"]
    if wp["status"] != "WAITING":
        out["output"] = json.dumps(secrets.mask(wp.get("output")))
        out["outputType"] = "application/json"
        out["outputIsError"] = bool(wp.get("output_is_error"))
    return Reply(out)


@endpoint
async def retrieve_wait_token(request: Request, d: Dash, who: Principal) -> Reply:
    """A token's status and output (``wait.retrieveToken``)."""
    return await run_in_threadpool(_retrieve_sync, d, request, request.path_params["token_id"])


async def token_callback(request: Request) -> Response:
    """``POST …/tokens/{id}/callback/{hmac}``: complete a token without an API key — the
    HMAC in the URL is the credential, so the URL can be handed to a third party."""
    d = dash(request)
    token_id, mac = request.path_params["token_id"], request.path_params["mac"]
    if not hmac.compare_digest(mac, d.callbacks.mac(token_id)):
        return ApiError(401, "Invalid callback signature").response()
    try:
        data = await json_body(request)
        reply = await run_in_threadpool(_complete_sync, d, token_id, data)
    except ApiError as exc:
        return exc.response()
    return JSONResponse(reply.body)
