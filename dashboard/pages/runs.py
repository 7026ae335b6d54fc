"""Runs list (filters, keyset pages, live refresh, bulk actions) and the run page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runtime import bulk, run_webhooks
from runtime import runs as rruns
from runtime.bulk import BulkAction
from runtime.errors import RunNotFoundError
from runtime.statuses import CANCELABLE_STATUSES, RunStatus
from runtime.store import dashboard as sql
from runtime.store import queue_controls, slots

from ..api.runs import LIST_COLUMNS, run_events, sse, time_cursor
from ..auth import Principal
from ..state import Dash, dash
from .render import render
from .session import page
from .why import run_state_note

FILTER_KEYS = ("status", "task", "tag", "queue", "from", "to", "q")


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_filters(source: Any) -> dict[str, Any]:
    """Filters from a query string or a form: the same names, so bulk actions act on
    exactly the list the user was looking at."""
    statuses = [s for s in source.getlist("status") if s in RunStatus.__members__]
    f: dict[str, Any] = {k: (source.get(k) or "").strip() for k in FILTER_KEYS if k != "status"}
    f["status"] = statuses
    return f


def store_filters(f: dict[str, Any]) -> dict[str, Any]:
    q = f["q"]
    return {
        "statuses": f["status"] or None,
        "tasks": [f["task"]] if f["task"] else None,
        "tags": [f["tag"]] if f["tag"] else None,
        # the concurrency queue: a task's own (its id) or a shared one (the Queues page)
        "queues": [f["queue"]] if f["queue"] else None,
        "created_from": _when(f["from"]),
        "created_to": _when(f["to"]),
        # one search box: a batch id, else an idempotency key (a run id opens the run)
        "batch_id": q if q.startswith("batch_") else None,
        "idempotency_key": q if q and not q.startswith(("batch_", "run_")) else None,
    }


def _page_rows(d: Dash, f: dict[str, Any], cursor: str | None) -> tuple[list, str | None]:
    size = d.settings.page_size
    filters = store_filters(f)
    cursor = time_cursor(cursor, filters["created_to"])
    rows = d.store.list_runs(**filters, cursor=cursor, limit=size + 1, columns=LIST_COLUMNS)
    return rows[:size], (rows[size - 1]["id"] if len(rows) > size else None)


def _query(f: dict[str, Any], **extra: Any) -> str:
    pairs = [(k, v) for k, v in f.items() if k != "status" and v]
    pairs += [("status", s) for s in f["status"]]
    pairs += [(k, v) for k, v in extra.items() if v]
    return urlencode(pairs)


@page
async def runs_list(request: Request, who: Principal) -> Response:
    d = dash(request)
    f = read_filters(request.query_params)
    if f["q"].startswith("run_"):
        return RedirectResponse(f"/runs/{f['q']}", 303)
    cursor = request.query_params.get("cursor") or None
    rows, next_cursor = await run_in_threadpool(_page_rows, d, f, cursor)
    tasks = await run_in_threadpool(lambda: [r["id"] for r in d.store.task_definitions()])
    template = "runs_rows.html" if request.query_params.get("fragment") else "runs.html"
    return render(
        request,
        who,
        template,
        rows=rows,
        f=f,
        statuses=list(RunStatus),
        tasks=sorted(tasks),
        next_url=f"/runs?{_query(f, cursor=next_cursor)}" if next_cursor else None,
        live=cursor is None,
        fragment_url=f"/runs?{_query(f, fragment=1)}",
        message=request.query_params.get("message"),
        go_on=_go_on(request.query_params),
    )


def _go_on(q: Any) -> dict[str, str] | None:
    """The bulk action a truncated one left to do: its action and where it stopped."""
    action, after = q.get("bulk_action"), q.get("bulk_after") or ""
    if action in ("cancel", "replay") and after.startswith("run_"):
        return {"action": action, "after": after}
    return None


def _bulk(d: Dash, f: dict[str, Any], action: BulkAction, after: str | None) -> bulk.BulkResult:
    """Apply ``action`` to every run the filters match (up to ``bulk_limit``), below
    ``after`` when going on with a truncated one."""
    return bulk.apply(d.store, action, store_filters(f), max_runs=d.settings.bulk_limit,
                      after=after)


@page
async def runs_bulk(request: Request, who: Principal) -> Response:
    form = request.state.form
    action = form.get("action")
    if action in ("cancel-background", "replay-background"):
        return await _start_background(request, who, action.split("-")[0])
    if action not in ("cancel", "replay"):
        return Response("unknown action", 400)
    after = form.get("after") or None
    if after is not None and not after.startswith("run_"):
        return Response("after must be a run id", 400)
    f = read_filters(form)
    d = dash(request)
    result = await run_in_threadpool(_bulk, d, f, action, after)
    verb = "canceled" if action == "cancel" else "replayed"
    message = f"{result.count} runs {verb}"
    if not result.truncated:
        return RedirectResponse(f"/runs?{_query(f, message=message)}", 303)
    # Clicking the button again would start over from the newest run: a replay would
    # replay the same runs twice. The page offers to go on below where this stopped.
    message += f"; more match (at most {d.settings.bulk_limit} at a time)"
    query = _query(f, message=message, bulk_action=action, bulk_after=result.next)
    return RedirectResponse(f"/runs?{query}", 303)


async def _start_background(request: Request, who: Principal, action: str) -> Response:
    """*… in the background*: a bulk action on the filtered list (runtime/bulk_actions.py),
    followed on the Bulk actions page."""
    from runtime import bulk_actions

    f = read_filters(request.state.form)
    try:
        started = await run_in_threadpool(bulk_actions.start, action, store_filters(f),
                                          by=f"dashboard:{who.name}")
    except ValueError as exc:  # no filter: it never acts on every run
        return RedirectResponse(f"/runs?{_query(f, message=str(exc))}", 303)
    message = f"{started.id} started: {action} in the background"
    return RedirectResponse(f"/bulk-actions?{urlencode({'message': message})}", 303)


def _run_page(d: Dash, run_id: str) -> dict[str, Any] | None:
    store = d.store
    row = store.get_run(run_id)
    if row is None:
        return None
    attempts = store.attempts(run_id, row)
    waitpoints = sql.waitpoints_of(store, run_id)
    return {
        "run": row,
        "why": run_state_note(row, waitpoints, datetime.now(UTC),
                              queue_controls.held(store, _queue_of(row)),
                              _total(store, row)),
        "attempts": attempts,
        "logs": store.logs(run_id),
        "waitpoints": waitpoints,
        "children": store.children(run_id),
        "webhooks": run_webhooks.deliveries(store, run_id),
        "parent": store.get_run(row["parent_id"]) if row["parent_id"] else None,
        "final": RunStatus(row["status"]).is_final,
        "cancelable": RunStatus(row["status"]) in CANCELABLE_STATUSES,
    }


def _total(store: Any, row: Any) -> int | None:
    """The total over all keys the run's claim checks (ops' override, else the code's),
    looked up only for a run waiting for a slot."""
    if not row["waiting_for_slot"]:
        return None
    with store.autocommit.connect() as conn:
        return slots.totals(conn, [_queue_of(row)]).get(_queue_of(row))


def _queue_of(row: Any) -> str:
    """The concurrency queue whose slots the run takes: its task's, or a shared one."""
    return str(row["concurrency_queue"] or row["task_identifier"])


@page
async def run_page(request: Request, who: Principal) -> Response:
    ctx = await run_in_threadpool(_run_page, dash(request), request.path_params["run_id"])
    if ctx is None:
        return render(request, who, "not_found.html", what="Run", status_code=404)
    level = request.query_params.get("level") or ""
    if level:
        ctx["logs"] = [r for r in ctx["logs"] if r["level"] == level]
    return render(request, who, "run.html", level=level, **ctx)


@page
async def run_events_page(request: Request, who: Principal) -> Response:
    d = dash(request)
    run_id = request.path_params["run_id"]
    if await run_in_threadpool(d.store.get_run, run_id) is None:
        return Response("run not found", 404)
    return sse(run_events(d, run_id, request))


@page
async def run_action(request: Request, who: Principal) -> Response:
    run_id, action = request.path_params["run_id"], request.path_params["action"]
    try:
        if action == "cancel":
            await run_in_threadpool(rruns.cancel, run_id)
            return RedirectResponse(f"/runs/{run_id}", 303)
        if action == "replay":
            handle = await run_in_threadpool(rruns.replay, run_id)
            return RedirectResponse(f"/runs/{handle.id}", 303)
    except RunNotFoundError:
        return Response("run not found", 404)
    return Response("unknown action", 400)
