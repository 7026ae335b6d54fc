"""fakesnow's HTTP server with a password check (fakesnow accepts any login).

Run by ``tests/stands/snowflake.py`` from the stand's venv: ``python _snowflake_server.py
PORT USER PASSWORD``. A wrong user or password gets Snowflake's own answer (code 390100),
so the connector's AuthenticationError mapping is tested over the wire.
"""

from __future__ import annotations

import gzip
import json
import sys
from typing import Any

import fakesnow.server as srv
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def main(port: int, user: str, password: str) -> None:
    original = srv.login_request

    async def login(request: Request) -> Any:
        body = await request.body()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        data = json.loads(body)["data"]
        if data.get("LOGIN_NAME") != user or data.get("PASSWORD") != password:
            return JSONResponse({
                "data": {"nextAction": "RETRY_LOGIN", "authnMethod": "USERNAME_PASSWORD"},
                "code": "390100", "message": "Incorrect username or password was specified.",
                "success": False,
            })
        return await original(request)

    for i, route in enumerate(srv.app.router.routes):
        if isinstance(route, Route) and route.path == "/session/v1/login-request":
            srv.app.router.routes[i] = Route(route.path, login, methods=["POST"])
    uvicorn.run(srv.app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], sys.argv[3])
