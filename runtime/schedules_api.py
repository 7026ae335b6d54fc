"""Imperative schedules: ``schedules.create/retrieve/list/update/delete/activate/deactivate``.

As in Trigger.dev: only tasks declared with ``schedules.task`` can be scheduled; many
schedules can attach to one task; a deduplication key makes ``create`` update the existing
schedule (its ``active`` flag is left as it is); declarative schedules live in code and
cannot be changed here. Every change reaches running schedulers within seconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from . import ids
from .bootstrap import get_runtime
from .cron import InvalidCronError
from .durations import utcnow
from .errors import BusterError, TaskNotFoundError
from .store import schedules as sql
from .task import get_task


class ScheduleNotFoundError(BusterError):
    code = "SCHEDULE_NOT_FOUND"


class InvalidScheduleError(BusterError, ValueError):
    code = "INVALID_SCHEDULE"


@dataclass
class Schedule:
    id: str
    task: str
    type: str  # DECLARATIVE | IMPERATIVE
    cron: str
    timezone: str
    external_id: str | None
    deduplication_key: str | None
    active: bool
    skip_if_active: bool
    next_run: datetime | None
    last_run: datetime | None
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SchedulePage:
    data: list[Schedule] = field(default_factory=list)
    next_cursor: str | None = None

    def __iter__(self) -> Any:
        return iter(self.data)


_UNSET: Any = object()


def _validate(cron: str, timezone: str) -> str:
    from .schedule_times import validate

    allow = get_runtime().settings.test_only_cron_seconds_field
    try:
        return validate(cron, timezone, allow)
    except InvalidCronError as exc:
        field_name = "timezone" if str(exc).startswith("unknown timezone") else "cron"
        raise InvalidScheduleError(f"invalid {field_name}: {exc}") from None


def _check_task(task_id: str) -> None:
    local = get_task(task_id)
    kind = local.kind if local is not None else None
    if kind is None:
        row = get_runtime().store.task_definition(task_id)
        if row is None:
            raise TaskNotFoundError(
                f"task {task_id!r} is not known: no worker has registered it and it is not "
                "defined in this process"
            )
        kind = row["kind"]
    if kind != "SCHEDULED":
        raise InvalidScheduleError(
            f"task {task_id!r} is not a scheduled task; declare it with @schedules.task "
            "to attach schedules"
        )


def _to_schedule(row: Any, last_run: datetime | None) -> Schedule:
    from .schedule_times import next_after

    allow = get_runtime().settings.test_only_cron_seconds_field
    nxt = next_after(row["cron"], row["timezone"], utcnow(), allow) if row["active"] else None
    return Schedule(
        id=row["id"],
        task=row["task_identifier"],
        type=row["type"],
        cron=row["cron"],
        timezone=row["timezone"],
        external_id=row["external_id"],
        deduplication_key=row["deduplication_key"],
        active=bool(row["active"]),
        skip_if_active=bool(row["skip_if_active"]),
        next_run=nxt,
        last_run=last_run,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _load(schedule_id: str) -> Any:
    row = sql.get(get_runtime().store, schedule_id)
    if row is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id!r} not found")
    return row


def _imperative(schedule_id: str, action: str) -> Any:
    row = _load(schedule_id)
    if row["type"] == "DECLARATIVE":
        raise InvalidScheduleError(
            f"schedule {schedule_id!r} is declarative (defined in code on task "
            f"{row['task_identifier']!r}); it cannot be {action} here: change the task's cron"
        )
    return row


def create(
    task: str,
    cron: str,
    timezone: str = "UTC",
    external_id: str | None = None,
    deduplication_key: str | None = None,
    skip_if_active: bool = False,
) -> Schedule:
    task_id = getattr(task, "id", task)
    cron = _validate(cron, timezone)
    _check_task(task_id)
    now = utcnow()
    row = sql.insert(
        get_runtime().store,
        {
            "id": ids.new_id("sched"),
            "task_identifier": task_id,
            "type": "IMPERATIVE",
            "cron": cron,
            "timezone": timezone,
            "external_id": external_id,
            "deduplication_key": deduplication_key,
            "active": True,
            "skip_if_active": skip_if_active,
            "created_at": now,
            "updated_at": now,
        },
    )
    return retrieve(row["id"])


def retrieve(schedule_id: str) -> Schedule:
    row = _load(schedule_id)
    return _to_schedule(row, sql.last_runs(get_runtime().store, [row["id"]]).get(row["id"]))


def list_schedules(
    task: str | Any | None = None,
    active: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> SchedulePage:
    store = get_runtime().store
    tasks = [task] if isinstance(task, str) else task
    rows = sql.list_page(store, tasks=tasks, active=active, cursor=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    last = sql.last_runs(store, [r["id"] for r in rows])
    return SchedulePage(
        data=[_to_schedule(r, last.get(r["id"])) for r in rows],
        next_cursor=rows[-1]["id"] if more and rows else None,
    )


def update(
    schedule_id: str,
    cron: str = _UNSET,
    timezone: str = _UNSET,
    external_id: str | None = _UNSET,
    skip_if_active: bool = _UNSET,
) -> Schedule:
    row = _imperative(schedule_id, "updated")
    values: dict[str, Any] = {}
    new_cron = row["cron"] if cron is _UNSET else cron
    new_tz = row["timezone"] if timezone is _UNSET else timezone
    if cron is not _UNSET or timezone is not _UNSET:
        values["cron"] = _validate(new_cron, new_tz)
        values["timezone"] = new_tz
    if external_id is not _UNSET:
        values["external_id"] = external_id
    if skip_if_active is not _UNSET:
        values["skip_if_active"] = bool(skip_if_active)
    if values and sql.update_row(get_runtime().store, schedule_id, values) is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id!r} not found")
    return retrieve(schedule_id)


def delete(schedule_id: str) -> Schedule:
    """Delete and return what was deleted."""
    gone = retrieve(_imperative(schedule_id, "deleted")["id"])
    if not sql.delete_row(get_runtime().store, schedule_id):
        raise ScheduleNotFoundError(f"schedule {schedule_id!r} not found")
    gone.active = False
    gone.next_run = None
    return gone


def _set_active(schedule_id: str, active: bool) -> Schedule:
    _imperative(schedule_id, "activated" if active else "deactivated")
    if sql.update_row(get_runtime().store, schedule_id, {"active": active}) is None:
        raise ScheduleNotFoundError(f"schedule {schedule_id!r} not found")
    return retrieve(schedule_id)


def activate(schedule_id: str) -> Schedule:
    return _set_active(schedule_id, True)


def deactivate(schedule_id: str) -> Schedule:
    return _set_active(schedule_id, False)
