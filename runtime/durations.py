"""Parse Trigger.dev-style durations: ``"30s"``, ``"1h52m18s"``, ``"2d"``, numbers, timedeltas."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: str | float | int | timedelta | None) -> float | None:
    """Seconds in ``value``; ``None`` stays ``None``. Raises ValueError with the bad input."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return float(value)
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("duration is empty")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(
            f"invalid duration {value!r}: use numbers with units ms, s, m, h, d, w (e.g. '1h30m')"
        )
    return total


def utcnow() -> datetime:
    return datetime.now(UTC)


def resolve_time(value: str | float | int | timedelta | datetime | None) -> datetime | None:
    """A delay given as a duration or an absolute datetime, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and ("T" in value or value.count("-") >= 2):
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    seconds = parse_duration(value)
    assert seconds is not None
    return utcnow() + timedelta(seconds=seconds)
