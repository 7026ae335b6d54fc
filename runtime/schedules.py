"""``schedules``: cron tasks. Declarative schedules live on the task and are synced to the
``schedules`` table when a worker or scheduler boots; a schedule removed from code is
deactivated, not left firing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from . import schedules_api as api
from .durations import utcnow
from .task import Task, all_tasks, task


class ScheduledPayload(BaseModel):
    """What a scheduled run receives, as Trigger.dev's scheduled payload."""

    schedule_id: str
    type: Literal["DECLARATIVE", "IMPERATIVE"]
    timestamp: datetime
    last_timestamp: datetime | None = None
    timezone: str = "UTC"
    external_id: str | None = None
    upcoming: list[datetime] = []


def _cron_spec(cron: Any, timezone: str | None) -> dict[str, str]:
    if isinstance(cron, dict):
        return {"pattern": cron["pattern"], "timezone": cron.get("timezone") or timezone or "UTC"}
    return {"pattern": str(cron), "timezone": timezone or "UTC"}


def declarative_id(task_id: str) -> str:
    return "sched_" + hashlib.sha256(task_id.encode()).hexdigest()[:24]


def scheduled_task(
    id: str,
    *,
    cron: Any = None,
    timezone: str | None = None,
    skip_if_active: bool = False,
    **options: Any,
) -> Callable[[Callable[..., Any]], Task[Any]]:
    """A task that can be scheduled; with ``cron`` it carries a declarative schedule."""

    def wrap(fn: Callable[..., Any]) -> Task[Any]:
        t = task(id, **options)(fn)
        t.kind = "SCHEDULED"
        t.schema = ScheduledPayload
        if cron is not None:
            from .cron import validate_cron

            spec = _cron_spec(cron, timezone)
            validate_cron(spec["pattern"], spec["timezone"])
            t.cron = {**spec, "skip_if_active": skip_if_active}
        return t

    return wrap


def sync_declarative_schedules(runtime: Any) -> None:
    """Upsert the declarative schedules of the tasks in this process. Schedules of tasks
    this process serves but no longer declare are deactivated."""
    from sqlalchemy import select, true, update

    from .store import tables as t

    now = utcnow()
    local = all_tasks()
    wanted = {tid: tk.cron for tid, tk in local.items() if tk.cron}
    store = runtime.store
    with store.begin() as conn:
        for task_id, spec in wanted.items():
            sid = declarative_id(task_id)
            values = {
                "task_identifier": task_id,
                "type": "DECLARATIVE",
                "cron": spec["pattern"],
                "timezone": spec["timezone"],
                "active": True,
                "skip_if_active": spec["skip_if_active"],
                "updated_at": now,
            }
            stmt = store._insert(t.schedules).values(id=sid, created_at=now, **values)
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))
        stale = (
            conn.execute(
                select(t.schedules.c.id).where(
                    t.schedules.c.type == "DECLARATIVE",
                    t.schedules.c.task_identifier.in_(list(local)),
                    t.schedules.c.task_identifier.not_in(list(wanted)) if wanted else true(),
                    t.schedules.c.active.is_(True),
                )
            )
            .scalars()
            .all()
        )
        if stale:
            conn.execute(
                update(t.schedules)
                .where(t.schedules.c.id.in_(stale))
                .values(active=False, updated_at=now)
            )
        from .store.schedules import notify

        notify(store, conn, "*")  # running schedulers reload now, not at their next poll


class _Schedules:
    """``schedules.task`` (declarative) and the imperative API, as in Trigger.dev."""

    task = staticmethod(scheduled_task)
    ScheduledPayload = ScheduledPayload
    Schedule = api.Schedule
    SchedulePage = api.SchedulePage
    ScheduleNotFoundError = api.ScheduleNotFoundError
    InvalidScheduleError = api.InvalidScheduleError
    create = staticmethod(api.create)
    retrieve = staticmethod(api.retrieve)
    list = staticmethod(api.list_schedules)
    update = staticmethod(api.update)
    delete = staticmethod(api.delete)
    activate = staticmethod(api.activate)
    deactivate = staticmethod(api.deactivate)


schedules = _Schedules()
