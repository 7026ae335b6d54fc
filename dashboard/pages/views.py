"""Tasks, queues, schedules, data sources; login and logout."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime import run_webhook_endpoints, run_webhooks, secrets
from runtime.errors import TaskNotFoundError
from runtime.store import dashboard as sql

from ..auth import SESSION_COOKIE, Principal
from ..queues import queue_depths
from ..state import Dash, dash
from .render import render
from .session import check_csrf, current_user, login_cookie, page, set_csrf_cookie


def _tasks(d: Dash) -> list[dict[str, Any]]:
    stats = sql.task_stats(d.store, sql.since(24))
    out = []
    for row in d.store.task_definitions():
        s = stats.get(row["id"], {})
        n = s.get("n", 0)
        out.append(
            {
                **dict(row),
                "runs_24h": n,
                "success_rate": (s.get("ok", 0) / n) if n else None,
                "p50": s.get("p50"),
                "p95": s.get("p95"),
            }
        )
    return sorted(out, key=lambda r: r["id"])


@page
async def tasks_page(request: Request, who: Principal) -> Response:
    d = dash(request)
    rows = await run_in_threadpool(_tasks, d)
    # which incoming webhooks trigger which task (never their secrets)
    hooks = [{"name": name, "task": ep.task, "scheme": ep.scheme, "payload": ep.payload}
             for name, ep in sorted(d.settings.webhooks.items())]
    # where ended runs are announced (runtime/run_webhooks.py): the URL's host only
    described = await run_in_threadpool(run_webhook_endpoints.describe, d.rt)
    outgoing = [e for e in described if e["configured"]]
    return render(request, who, "tasks.html", tasks=rows, webhooks=hooks,
                  run_webhooks=outgoing, message=request.query_params.get("message"))


def _run_webhook_action(d: Dash, name: str, action: str, by: str) -> str:
    if action == "remove":  # only one added at runtime: the setting's stay the setting's
        try:
            run_webhook_endpoints.remove(name, by=by)
        except run_webhook_endpoints.RunWebhookNotFoundError as exc:
            return str(exc)
        return f"{name} removed: no new deliveries to it (other processes within seconds)"
    endpoints = run_webhook_endpoints.current(d.rt)
    endpoint = endpoints.get(name)
    if endpoint is None:
        return f"No run webhook named {name!r} (BUSTER_RUN_WEBHOOKS or added at runtime)"
    if action == "retry":
        n = run_webhooks.retry_failed(d.store, name)
        return f"{n} failed deliveries of {name} requeued"
    try:
        run_webhooks.send_test(endpoint, name, d.rt.settings.dashboard_public_url)
    except run_webhooks.DeliveryError as exc:  # names no URL
        return f"Test of {name} ({endpoint.host()}) failed: {exc}"
    return f"Test of {name} ({endpoint.host()}) delivered"


@page
async def run_webhook_action(request: Request, who: Principal) -> Response:
    """The Tasks page's Send test / Retry failed / Remove buttons of a run webhook."""
    from urllib.parse import quote

    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ("test", "retry", "remove"):
        return Response("unknown action", 400)
    message = await run_in_threadpool(_run_webhook_action, dash(request), name, action,
                                      f"dashboard:{who.name}")
    return RedirectResponse(f"/tasks?message={quote(message)}", 303)


def _queues(d: Dash) -> dict[str, Any]:
    from runtime import queues

    listed = queues.list()
    return {
        "task_queues": listed,
        # a slot group's queue links to its task's runs unless it is a shared queue
        "shared": {q.name for q in listed if q.shared},
        "queues": queue_depths(d),
        "workers": d.store.workers_online(d.settings.worker_online_seconds),
        "slots": sql.slot_groups(d.store),
        # runs whose trigger named a queue nothing declared (runtime/pending_queues.py)
        "undeclared": sql.waiting_for_queue(d.store),
    }


@page
async def queues_page(request: Request, who: Principal) -> Response:
    ctx = await run_in_threadpool(_queues, dash(request))
    message = request.query_params.get("message")
    return render(request, who, "queues.html", message=message, **ctx)


def _queue_action(task_id: str, action: str, form: Any, by: str) -> str:
    from runtime import queues

    if action == "pause":
        queues.pause(task_id, by=by)
        return f"{task_id} paused: no new run starts until it is resumed"
    if action == "resume":
        queues.resume(task_id, by=by)
        return f"{task_id} resumed"
    if action == "reset":
        q = queues.reset_concurrency_limit(task_id)
        return f"{task_id}: limit reset to {q.concurrency_limit or 'none'}"
    try:
        limit = int(str(form.get("limit", "")).strip())
    except ValueError:
        raise ValueError("the limit must be a whole number from 0 to 100000") from None
    if action == "override-total":
        queues.override_total_concurrency_limit(task_id, limit, by=by)
        return f"{task_id}: total over all keys overridden to {limit}"
    queues.override_concurrency_limit(task_id, limit, by=by)
    return f"{task_id}: limit overridden to {limit}"


@page
async def queue_action(request: Request, who: Principal) -> Response:
    from urllib.parse import quote

    task_id, action = request.path_params["task_id"], request.path_params["action"]
    if action not in ("pause", "resume", "override", "override-total", "reset"):
        return Response("unknown action", 400)
    form = getattr(request.state, "form", {}) or {}
    try:
        message = await run_in_threadpool(
            _queue_action, task_id, action, form, f"dashboard:{who.name}"
        )
    except (TaskNotFoundError, ValueError) as exc:  # unknown task, bad limit: say so
        message = f"{type(exc).__name__}: {exc}"
    return RedirectResponse(f"/queues?message={quote(message)}", 303)


def _schedules(d: Dash) -> dict[str, Any]:
    from runtime import schedules

    if not hasattr(schedules, "list"):
        return {"schedules": [], "fires": {}, "available": False}
    items, cursor = [], None
    while True:
        chunk = schedules.list(cursor=cursor, limit=100)
        items += list(chunk.data)
        cursor = chunk.next_cursor
        if cursor is None or len(items) >= 1000:
            break
    fires = sql.schedule_fires(d.store, [s.id for s in items])
    return {"schedules": items, "fires": fires, "available": True}


@page
async def schedules_page(request: Request, who: Principal) -> Response:
    ctx = await run_in_threadpool(_schedules, dash(request))
    return render(
        request, who, "schedules.html", message=request.query_params.get("message"), **ctx
    )


@page
async def schedule_action(request: Request, who: Principal) -> Response:
    from runtime import schedules

    sid, action = request.path_params["schedule_id"], request.path_params["action"]
    if action not in ("activate", "deactivate"):
        return Response("unknown action", 400)
    try:
        await run_in_threadpool(getattr(schedules, action), sid)
    except Exception as exc:  # not found / declarative: show why on the page
        return RedirectResponse(f"/schedules?message={type(exc).__name__}: {exc}", 303)
    return RedirectResponse(f"/schedules?message=schedule {sid} {action}d", 303)


def _sources(d: Dash) -> list[dict[str, Any]]:
    try:
        from runtime import datasources
    except ImportError:
        return []
    out = []
    for row in sql.data_source_rows(d.store):  # never the credentials column
        info = datasources.catalog_info(row["id"])
        out.append({**dict(row), "catalog": info})
    return out


@page
async def datasources_page(request: Request, who: Principal) -> Response:
    rows = await run_in_threadpool(_sources, dash(request))
    return render(request, who, "datasources.html", sources=rows)


def _catalog(d: Dash, source_id: str) -> dict[str, Any] | None:
    from runtime import datasources

    row = next((r for r in sql.data_source_rows(d.store) if r["id"] == source_id), None)
    if row is None:
        return None
    catalog = datasources.load_catalog(source_id)
    tables = []
    if catalog is not None:
        for table in catalog.tables:
            tables.append(secrets.safe_json(table))
    return {"source": row, "info": datasources.catalog_info(source_id), "tables": tables}


@page
async def catalog_page(request: Request, who: Principal) -> Response:
    ctx = await run_in_threadpool(_catalog, dash(request), request.path_params["source_id"])
    if ctx is None:
        return render(request, who, "not_found.html", what="Data source", status_code=404)
    return render(request, who, "catalog.html", **ctx)


# ---------------------------------------------------------------------- login
async def login_page(request: Request) -> Response:
    d = dash(request)
    who = await current_user(request)
    nxt = request.query_params.get("next") or "/runs"
    if not nxt.startswith("/") or nxt.startswith("//"):
        nxt = "/runs"  # never redirect off-site
    if request.method == "GET":
        if who is not None:
            return RedirectResponse(nxt, 303)
        response = render(request, None, "login.html", next=nxt, error=None)
        set_csrf_cookie(request, response)
        return response
    try:
        form = await check_csrf(request)
    except PermissionError:
        return Response("CSRF check failed", 403)
    key = str(form.get("api_key") or "").strip()
    principal = await run_in_threadpool(d.keys.lookup, key) if key else None
    if principal is None:
        response = render(
            request,
            None,
            "login.html",
            next=nxt,
            error="That API key is not valid.",
            status_code=401,
        )
        set_csrf_cookie(request, response)
        return response
    redirect = RedirectResponse(nxt, 303)
    login_cookie(request, redirect, principal)
    return redirect


@page
async def logout(request: Request, who: Principal) -> Response:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE)
    return response
