"""The ASGI app: Trigger.dev-compatible API under ``/api``, ops pages, health, metrics."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import health
from .api import openapi, routes, runs, waitpoints, webhooks
from .api.errors import ApiError
from .config import DashboardSettings
from .limits import BodyLimit, BodyTooLarge, too_large_handler
from .pages import bulk, views
from .pages import runs as run_pages
from .state import Dash


async def _openapi(request: Request) -> Response:
    return JSONResponse(openapi.document())


async def _home(request: Request) -> Response:
    return RedirectResponse("/runs", 303)


async def _api_not_found(request: Request) -> Response:
    return ApiError(404, f"No API route {request.method} {request.url.path}").response()


def _routes() -> list[Any]:
    api = [Route(op.path, op.handler, methods=[op.method]) for op in routes.OPS]
    api += [
        Route("/api/v1/runs/{run_id}/stream", runs.realtime_run, methods=["GET"]),
        Route(
            "/api/v1/waitpoints/tokens/{token_id}/callback/{mac}",
            waitpoints.token_callback,
            methods=["POST"],
        ),
        # authenticated by the sender's signature, not an API key
        Route("/api/v1/webhooks/{name}", webhooks.receive_webhook, methods=["POST"]),
        Route("/api/openapi.json", _openapi, methods=["GET"]),
        Route("/api/{rest:path}", _api_not_found, methods=["GET", "POST", "PUT", "DELETE"]),
    ]
    pages = [
        Route("/", _home),
        Route("/login", views.login_page, methods=["GET", "POST"]),
        Route("/logout", views.logout, methods=["POST"]),
        Route("/runs", run_pages.runs_list),
        Route("/runs/bulk", run_pages.runs_bulk, methods=["POST"]),
        Route("/runs/{run_id}", run_pages.run_page),
        Route("/runs/{run_id}/events", run_pages.run_events_page),
        Route("/runs/{run_id}/{action}", run_pages.run_action, methods=["POST"]),
        Route("/tasks", views.tasks_page),
        Route("/run-webhooks/{name}/{action}", views.run_webhook_action, methods=["POST"]),
        Route("/bulk-actions", bulk.bulk_actions_page),
        Route("/bulk-actions/{bulk_id}/abort", bulk.bulk_action_abort, methods=["POST"]),
        Route("/queues", views.queues_page),
        Route("/queues/{task_id}/{action}", views.queue_action, methods=["POST"]),
        Route("/schedules", views.schedules_page),
        Route("/schedules/{schedule_id}/{action}", views.schedule_action, methods=["POST"]),
        Route("/datasources", views.datasources_page),
        Route("/datasources/{source_id}", views.catalog_page),
    ]
    ops = [
        Route("/healthz", health.healthz),
        Route("/readyz", health.readyz),
        Route("/metrics", health.metrics),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    return api + ops + pages


def create_app(runtime: Any = None, settings: DashboardSettings | None = None) -> Any:
    """Build the app on a runtime (default: this process's, from ``BUSTER_*``)."""
    from runtime import get_runtime

    rt = runtime or get_runtime()
    settings = settings or DashboardSettings()
    app = Starlette(routes=_routes(), exception_handlers={BodyTooLarge: too_large_handler})
    app.state.dash = Dash.build(rt, settings)
    # Everything built so far (modules, SQLAlchemy and pydantic machinery, the app) lives
    # as long as the process: out of the collector's sight, a full collection no longer
    # walks it while requests wait (the trigger benchmark's p99 and req/s improve).
    gc.freeze()
    return BodyLimit(app, settings.max_body_bytes)
