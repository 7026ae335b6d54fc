"""Fire times of a schedule: cron + IANA timezone → nominal UTC instants.

APScheduler's ``CronTrigger`` does the calendar arithmetic; this module adds our rules:

* crontab(5) day-of-week numbers (``runtime.cron`` translates them to names);
* DST, as Vixie cron does it. A wall time that does not exist (spring forward, e.g. 02:30 in
  New York on the second Sunday of March) fires once, at the same offset as before the jump
  (02:30 EST = 03:30 EDT): that is APScheduler's own result. A wall time that happens twice
  (fall back, e.g. 01:30) fires only the first time when the hour field is fixed; with a
  wildcard hour (``*``, ``*/2`` …) both really are new ticks of the clock and both fire;
* a test-only seconds field (``test_only_cron_seconds_field``).

Everything returned is an aware UTC datetime except ``upcoming``, which is in the schedule's
own timezone (what a task author reads in the payload).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from .cron import InvalidCronError, to_apscheduler_fields, validate_cron


def split_seconds(expr: str, allow_seconds: bool) -> tuple[str | None, str]:
    """``(seconds field or None, 5-field crontab)``. Six fields only with the test knob."""
    parts = expr.split()
    if len(parts) == 6 and allow_seconds:
        sec = parts[0]
        for item in sec.split(","):
            body, _, step = item.partition("/")
            for token in [] if body == "*" else body.split("-", 1):
                if not token.isdigit() or int(token) > 59:
                    raise InvalidCronError(f"cron {expr!r}: second must be between 0 and 59")
            if step and (not step.isdigit() or int(step) == 0):
                raise InvalidCronError(f"cron {expr!r}: second has invalid step {step!r}")
        return sec, " ".join(parts[1:])
    return None, expr


def validate(expr: str, timezone: str, allow_seconds: bool = False) -> str:
    """The normalised expression, or ``InvalidCronError`` naming the field and the reason."""
    sec, five = split_seconds(expr.strip(), allow_seconds)
    normal = validate_cron(five, timezone)
    return f"{sec} {normal}" if sec is not None else normal


@lru_cache(maxsize=4096)
def trigger(expr: str, timezone: str, allow_seconds: bool = False) -> CronTrigger:
    """One trigger per distinct (cron, timezone): 10,000 schedules on ``* * * * *`` share one."""
    sec, five = split_seconds(expr.strip(), allow_seconds)
    fields = to_apscheduler_fields(five)
    return CronTrigger(second=sec or "0", timezone=ZoneInfo(timezone), **fields)


def _fixed_hour(expr: str) -> bool:
    parts = expr.split()
    hour = parts[-4]  # minute hour dom month dow, with or without a seconds field first
    return "*" not in hour


def suppressed(fire: datetime, expr: str, timezone: str) -> bool:
    """The repeated wall time of a fall-back night, for a schedule pinned to an hour."""
    return _fixed_hour(expr) and fire.astimezone(ZoneInfo(timezone)).fold == 1


def next_after(expr: str, timezone: str, after: datetime, allow_seconds: bool = False) -> datetime:
    """The first tick strictly after ``after`` (UTC), DST rule applied."""
    trig = trigger(expr, timezone, allow_seconds)
    t = after
    while True:
        nxt = trig.get_next_fire_time(t, t)
        if nxt is None:  # pragma: no cover - cron triggers never end
            raise InvalidCronError(f"cron {expr!r} never fires")
        nxt = nxt.astimezone(UTC)
        if nxt > after and not suppressed(nxt, expr, timezone):
            return nxt
        t = nxt if nxt > t else t + timedelta(microseconds=1)


def ticks(
    expr: str, timezone: str, start: datetime, end: datetime, allow_seconds: bool = False
) -> list[datetime]:
    """Ticks in ``(start, end]``."""
    out: list[datetime] = []
    t = next_after(expr, timezone, start, allow_seconds)
    while t <= end:
        out.append(t)
        t = next_after(expr, timezone, t, allow_seconds)
    return out


def latest_tick(
    expr: str, timezone: str, before: datetime, window: float, allow_seconds: bool = False
) -> datetime | None:
    """The last tick in ``[before - window, before)``: the one catch-up candidate."""
    found = ticks(
        expr,
        timezone,
        before - timedelta(seconds=window, microseconds=1),
        before - timedelta(microseconds=1),
        allow_seconds,
    )
    return found[-1] if found else None


@lru_cache(maxsize=4096)
def upcoming(
    expr: str, timezone: str, after: datetime, n: int = 5, allow_seconds: bool = False
) -> tuple[datetime, ...]:
    """The next ``n`` ticks after ``after``, in the schedule's timezone. Cached: every
    schedule with the same cron and zone firing at the same instant shares the answer."""
    zone = ZoneInfo(timezone)
    out, t = [], after
    for _ in range(n):
        t = next_after(expr, timezone, t, allow_seconds)
        out.append(t.astimezone(zone))
    return tuple(out)
