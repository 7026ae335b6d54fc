"""Request body limit as ASGI middleware: a clear 413 naming the limit, checked on the
declared Content-Length and, for chunked bodies (the SDK's NDJSON stream), as bytes
arrive — so an oversize body is never buffered whole."""

from __future__ import annotations

import json
from typing import Any


class BodyTooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


async def too_large_handler(request: Any, exc: Exception) -> Any:
    """Registered on the app: a body that outgrows the limit mid-stream is raised inside
    the handler's ``receive``; this turns it into the same 413."""
    from starlette.responses import Response

    limit = exc.limit if isinstance(exc, BodyTooLarge) else 0
    return Response(
        _message(limit),
        413,
        media_type="application/json",
        headers={"x-should-retry": "false"},
    )


def _message(limit: int) -> bytes:
    return json.dumps(
        {
            "error": f"Request body is larger than the {limit} byte limit "
            f"({limit // 1024} KiB); send a smaller payload",
            "limit": limit,
        }
    ).encode()


class BodyLimit:
    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = _message(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-should-retry", b"false"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
