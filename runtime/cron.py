"""Cron strings as crontab(5) means them, validated with errors that name the field.

APScheduler 3 numbers days of the week from Monday = 0; crontab uses Sunday = 0 (and 7).
We translate numeric day-of-week values to names before handing them to APScheduler.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_FIELDS = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
]
_DOW = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class InvalidCronError(ValueError):
    code = "INVALID_CRON"


def _check_value(token: str, name: str, lo: int, hi: int, expr: str) -> None:
    names = _DOW if name == "day of week" else _MONTHS if name == "month" else []
    if token.lower() in names:
        return
    if not token.isdigit():
        raise InvalidCronError(f"cron {expr!r}: {name} field has invalid value {token!r}")
    if not lo <= int(token) <= hi:
        raise InvalidCronError(f"cron {expr!r}: {name} must be between {lo} and {hi}, got {token}")


def _check_field(part: str, name: str, lo: int, hi: int, expr: str) -> None:
    for item in part.split(","):
        body, _, step = item.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            raise InvalidCronError(f"cron {expr!r}: {name} has invalid step {step!r}")
        if body in ("*", "?") or (name in ("day of month",) and body == "L"):
            continue
        for token in body.split("-", 1):
            _check_value(token, name, lo, hi, expr)


def validate_cron(expr: str, timezone: str = "UTC") -> str:
    """Return the normalised 5-field expression or raise ``InvalidCronError``."""
    text = _ALIASES.get(expr.strip().lower(), expr.strip())
    parts = re.split(r"\s+", text)
    if len(parts) != 5:
        raise InvalidCronError(
            f"cron {expr!r}: expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)}"
        )
    for part, (name, lo, hi) in zip(parts, _FIELDS, strict=True):
        _check_field(part, name, lo, hi, expr)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidCronError(f"unknown timezone {timezone!r} (use an IANA name)") from None
    return " ".join(parts)


def to_apscheduler_fields(expr: str) -> dict[str, str]:
    """crontab fields → APScheduler CronTrigger kwargs, day-of-week translated to names."""
    minute, hour, dom, month, dow = validate_cron(expr).split()

    dow_out = dow if dow in ("*", "?") else ",".join(_DOW[d][:3] for d in sorted(_expand_dow(dow)))
    return {
        "minute": minute,
        "hour": hour,
        "day": "last" if dom == "L" else dom,
        "month": month,
        "day_of_week": dow_out,
    }


def _expand_dow(field: str) -> set[int]:
    """crontab day-of-week field → set of days 0..6 (Sunday = 0; 7 also means Sunday)."""
    days: set[int] = set()
    for item in field.split(","):
        body, _, step_s = item.partition("/")
        step = int(step_s) if step_s else 1
        if body in ("*", "?"):
            lo, hi = 0, 6
        else:
            a, dash, b = body.partition("-")
            lo = _DOW.index(a.lower()) if not a.isdigit() else int(a)
            hi = (_DOW.index(b.lower()) if not b.isdigit() else int(b)) if dash else lo
            if not dash and step_s:
                hi = 7
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return days
