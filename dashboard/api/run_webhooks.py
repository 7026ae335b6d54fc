"""Run webhook endpoints over HTTP: list the ones in force, add one at runtime, remove one
(runtime/run_webhook_endpoints.py). No answer ever holds an endpoint's URL or secret — only
its URL's host — so a key that may list them cannot read where they post."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..auth import Principal
from ..state import Dash
from .common import Reply, endpoint, json_body, object_body
from .errors import ApiError
from .serialize import camel

# the body's keys (Trigger.dev-style camelCase) and add()'s arguments
_FIELDS = {"name": "name", "url": "url", "format": "format", "secret": "secret",
           "statuses": "statuses", "tasks": "tasks", "tags": "tags",
           "timeoutSeconds": "timeout_seconds", "maxAttempts": "max_attempts",
           "replace": "replace"}


@endpoint
async def list_run_webhooks(request: Request, d: Dash, who: Principal) -> Reply:
    from runtime import run_webhook_endpoints

    shown = await run_in_threadpool(run_webhook_endpoints.list_all)
    return Reply({"data": [camel(e) for e in shown]})


@endpoint
async def create_run_webhook(request: Request, d: Dash, who: Principal) -> Reply:
    from runtime import run_webhook_endpoints

    body = object_body(await json_body(request))
    unknown = sorted(set(body) - set(_FIELDS))
    if unknown:  # names only: a misspelt key's value may be the secret
        raise ApiError(400, f"Invalid request: unknown field(s) {', '.join(unknown)}")
    args = {_FIELDS[k]: v for k, v in body.items()}
    for required in ("name", "url"):
        if not isinstance(args.get(required), str):
            raise ApiError(400, f"Invalid request: {required} (a string) is required")
    try:
        shown = await run_in_threadpool(
            lambda: run_webhook_endpoints.add(**args, by=f"api:{who.name}"))
    except run_webhook_endpoints.RunWebhookExistsError as exc:
        raise ApiError(409, str(exc)) from None
    except (run_webhook_endpoints.RunWebhookError, TypeError) as exc:
        raise ApiError(422, str(exc) if isinstance(exc, run_webhook_endpoints.RunWebhookError)
                       else "Invalid request: a field has the wrong type") from None
    return Reply(camel(shown), 201)


@endpoint
async def delete_run_webhook(request: Request, d: Dash, who: Principal) -> Reply:
    from runtime import run_webhook_endpoints

    name = request.path_params["name"]
    try:
        await run_in_threadpool(
            lambda: run_webhook_endpoints.remove(name, by=f"api:{who.name}"))
    except run_webhook_endpoints.RunWebhookNotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    return Reply({"name": name, "removed": True})
