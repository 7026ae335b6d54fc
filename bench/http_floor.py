"""The HTTP floor for the trigger-endpoint benchmark (``bench/api.py``): the same uvicorn
(workers, HTTP parser, event loop) and Starlette, one POST route that reads the JSON body
and answers a small JSON object — no auth, no database, no broker. What any Python endpoint
on this stack costs on this machine; the trigger endpoint's rate is reported against it."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def trigger(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    return JSONResponse({"id": "run_floor", "isCached": False, "n": len(body)})


app = Starlette(routes=[Route("/api/v1/tasks/{task_id:path}/trigger", trigger, methods=["POST"])])
