"""Who is looking at a page, and CSRF for every form.

Sign-in: an API key exchanged for a signed session cookie (the key itself is not stored
in the cookie), or — behind an authenticating proxy — a trusted header naming the user.
CSRF: double-submit token (cookie ``bj_csrf`` + hidden form field, compared in constant
time) plus an Origin check; cookies are SameSite=Lax/Strict, HttpOnly where possible."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime.store import dashboard as sql

from ..auth import CSRF_COOKIE, SESSION_COOKIE, Principal, new_csrf_token
from ..state import dash


async def current_user(request: Request) -> Principal | None:
    d = dash(request)
    header = d.settings.trusted_header
    if header and request.headers.get(header):
        return Principal(request.headers[header])
    data = d.sessions.unsign(request.cookies.get(SESSION_COOKIE))
    if data is None:
        return None
    if not await run_in_threadpool(sql.api_key_active, d.store, data["key_id"]):
        return None  # the key was revoked: so is every session made with it
    return Principal(data["name"], data["key_id"])


def login_cookie(request: Request, response: Response, who: Principal) -> None:
    d = dash(request)
    token = d.sessions.sign(
        {"key_id": who.key_id, "name": who.name, "exp": time.time() + d.settings.session_seconds}
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=d.settings.session_seconds,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def csrf_token(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE) or request.scope.get("bj_new_csrf")
    if not token:
        token = new_csrf_token()
        request.scope["bj_new_csrf"] = token
    return str(token)


def set_csrf_cookie(request: Request, response: Response) -> None:
    new = request.scope.get("bj_new_csrf")
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=False, samesite="strict")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None  # no Origin (old clients): rely on the token alone
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


async def check_csrf(request: Request) -> Any:
    """The form, after checking its CSRF token; raises PermissionError when it fails."""
    form = await request.form()
    sent = str(form.get("csrf") or "")
    cookie = request.cookies.get(CSRF_COOKIE) or ""
    if not cookie or not hmac.compare_digest(sent, cookie) or not _same_origin(request):
        raise PermissionError("CSRF check failed")
    return form


Page = Callable[[Request, Principal], Awaitable[Response]]


def page(fn: Page) -> Callable[[Request], Awaitable[Response]]:
    """Require a signed-in user; POSTs also pass the CSRF check."""

    async def route(request: Request) -> Response:
        who = await current_user(request)
        if who is None:
            if request.method == "GET" and "text/event-stream" not in request.headers.get(
                "accept", ""
            ):
                return RedirectResponse(f"/login?next={request.url.path}", 303)
            return Response("sign in first", 401)
        if request.method == "POST":
            try:
                request.state.form = await check_csrf(request)
            except PermissionError as exc:
                return Response(str(exc), 403)
        response = await fn(request, who)
        set_csrf_cookie(request, response)
        return response

    route.__name__ = fn.__name__
    return route
