"""Request plumbing shared by the API handlers: bearer auth, JSON bodies, the
``x-trigger-jwt`` header, and request idempotency for calls that create things."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from runtime.store import dashboard as sql
from runtime.store.engine import dumps

from .. import jwt
from ..auth import Principal, bearer, key_fingerprint
from ..state import Dash, dash
from .errors import ApiError, translate

log = logging.getLogger("buster.dashboard.api")
REQUEST_KEY_HEADER = "x-trigger-request-idempotency-key"
T = TypeVar("T")


@dataclass
class Reply:
    """A handler's answer; ``scopes`` asks for an ``x-trigger-jwt`` with those scopes."""

    body: Any
    status: int = 200
    scopes: list[str] = field(default_factory=list)


Handler = Callable[[Request, Dash, Principal], Awaitable[Reply]]


def endpoint(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler: authenticate the bearer key, translate errors, build the response."""

    async def route(request: Request) -> Response:
        d = dash(request)
        key = bearer(request.headers)
        principal = None
        if key:
            found, principal = d.keys.cached(key)
            if not found:
                principal = await run_in_threadpool(d.keys.lookup, key)
        if principal is None:
            log.warning(
                "rejected API request: invalid or missing API key",
                extra={
                    "action": "api_auth_failed",
                    "path": request.url.path,
                    "key": key_fingerprint(key),
                },
            )
            return ApiError(401, "Invalid or missing API key").response()
        reply = await answered(fn(request, d, principal))
        return reply if isinstance(reply, Response) else respond(reply, key)

    route.__name__ = fn.__name__
    route.__doc__ = fn.__doc__
    return route


async def answered(work: Awaitable[T]) -> T | Response:
    """``work``'s result, or the error response an ApiError or a runtime error maps to; an
    error of ours (no mapping) is raised, for a 500."""
    try:
        return await work
    except ApiError as exc:
        return exc.response()
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:
            raise
        return mapped.response()


def respond(reply: Reply, key: str | None) -> Response:
    headers = {}
    if reply.scopes and key:
        headers["x-trigger-jwt"] = jwt.mint(key, reply.scopes)
    return Response(dumps(reply.body), reply.status, headers, "application/json")


async def json_body(request: Request, *, default: Any = None) -> Any:
    """The JSON body; an empty body is ``default`` (the SDK sends ``Content-Type:
    application/json`` with no body on cancel, replay, activate …)."""
    raw = await request.body()
    if not raw.strip():
        return {} if default is None else default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # the stdlib parser accepts a little more (integers beyond 64 bits, NaN)
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"Malformed JSON body: {exc}") from None


def object_body(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid request body: expected a JSON object")
    return value


async def once(
    request: Request, d: Dash, scope: str, make: Callable[[], Awaitable[Reply]]
) -> Reply:
    """Run ``make`` once per ``x-trigger-request-idempotency-key``: the SDK sends the same
    key on its automatic retries, so a retry after a lost response replays the stored
    answer instead of acting twice. A retry that overlaps the first attempt gets 409,
    which the SDK retries."""
    key = (request.headers.get(REQUEST_KEY_HEADER) or "")[:128]
    if not key:
        return await make()
    store = d.store
    if not await run_in_threadpool(sql.claim_request, store, scope, key):
        for _ in range(40):
            row = await run_in_threadpool(sql.get_request, store, scope, key)
            if row is not None and row["status_code"] is not None:
                return Reply(row["body"], row["status_code"], _stored_scopes(row["body"]))
            await asyncio.sleep(0.1)
        raise ApiError(409, "A request with this idempotency key is still in progress")
    try:
        reply = await make()
    except ApiError as exc:
        await run_in_threadpool(
            sql.finish_request, store, scope, key, exc.status, {"error": exc.message}
        )
        raise
    except Exception as exc:
        mapped = translate(exc)
        if mapped is None:  # our fault: forget the claim so the SDK's retry acts
            await run_in_threadpool(sql.release_request, store, scope, key)
            raise
        await run_in_threadpool(
            sql.finish_request, store, scope, key, mapped.status, {"error": mapped.message}
        )
        raise mapped from None
    await run_in_threadpool(sql.finish_request, store, scope, key, reply.status, reply.body)
    return reply


def _stored_scopes(body: Any) -> list[str]:
    if isinstance(body, dict) and isinstance(body.get("id"), str) and "error" not in body:
        return [f"read:runs:{body['id']}"]
    return []
