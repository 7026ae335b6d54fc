"""Cron strings as crontab(5) means them, DST rules and catch-up windows (no servers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from runtime import schedule_times as st
from runtime.cron import InvalidCronError, validate_cron

NY = "America/New_York"


def _utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("61 * * * *", ["minute", "between 0 and 59", "61"]),
        ("0 24 * * *", ["hour", "between 0 and 23", "24"]),
        ("0 0 32 * *", ["day of month", "between 1 and 31"]),
        ("0 0 * 13 *", ["month", "between 1 and 12"]),
        ("0 0 * * 8", ["day of week", "between 0 and 7"]),
        ("*/0 * * * *", ["minute", "invalid step"]),
        ("x * * * *", ["minute", "invalid value 'x'"]),
        ("* * * *", ["expected 5 fields", "got 4"]),
    ],
)
def test_invalid_cron_names_the_field_and_why(expr: str, words: list[str]):
    with pytest.raises(InvalidCronError) as info:
        validate_cron(expr)
    for w in words:
        assert w in str(info.value)


def test_unknown_timezone_is_an_error():
    with pytest.raises(InvalidCronError, match="unknown timezone 'Mars/Base'"):
        validate_cron("0 9 * * *", "Mars/Base")


def test_aliases_and_valid_forms():
    assert validate_cron("@daily") == "0 0 * * *"
    assert validate_cron("0 9 * * mon-fri") == "0 9 * * mon-fri"
    assert validate_cron("0 0 L * *") == "0 0 L * *"


def _weekdays(expr: str) -> list[str]:
    """Names of the days a daily-at-midnight cron fires on during one week (UTC)."""
    start = _utc(2026, 3, 1) - timedelta(seconds=1)  # 2026-03-01 is a Sunday
    fired = st.ticks(expr, "UTC", start, _utc(2026, 3, 7, 23, 59))
    return [t.strftime("%a") for t in fired]


@pytest.mark.parametrize(
    ("dow", "days"),
    [
        ("0", ["Sun"]),
        ("7", ["Sun"]),
        ("1", ["Mon"]),
        ("6", ["Sat"]),
        ("1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("5-7", ["Sun", "Fri", "Sat"]),
        ("0,3", ["Sun", "Wed"]),
        ("*/2", ["Sun", "Tue", "Thu", "Sat"]),
        ("sun", ["Sun"]),
        ("mon-wed", ["Mon", "Tue", "Wed"]),
    ],
)
def test_day_of_week_numbers_mean_what_crontab_says(dow: str, days: list[str]):
    # APScheduler alone would read "0" as Monday; crontab(5): 0 and 7 are Sunday
    assert _weekdays(f"0 0 * * {dow}") == days


def test_spring_forward_skipped_wall_time_fires_once_that_day():
    # 2026-03-08 New York jumps 02:00 → 03:00: 02:30 does not exist
    fired = st.ticks("30 2 * * *", NY, _utc(2026, 3, 7), _utc(2026, 3, 10))
    local = [t.astimezone(ZoneInfo(NY)) for t in fired]
    assert [t.date().day for t in local] == [7, 8, 9]  # once per day, none lost
    assert local[1].strftime("%H:%M %Z") == "03:30 EDT"  # 02:30 EST = 03:30 EDT
    assert local[0].strftime("%H:%M") == local[2].strftime("%H:%M") == "02:30"


def test_fall_back_repeated_wall_time_fires_once_for_a_fixed_hour():
    # 2026-11-01 New York repeats 01:00–02:00: a 01:30 job runs once (the first one)
    fired = st.ticks("30 1 * * *", NY, _utc(2026, 10, 31), _utc(2026, 11, 3))
    assert [t.astimezone(ZoneInfo(NY)).day for t in fired] == [31, 1, 2]
    assert fired[1] == _utc(2026, 11, 1, 5, 30)  # 01:30 EDT, not 01:30 EST


def test_fall_back_wildcard_hour_fires_every_real_tick():
    # */30 every hour: both 01:00 and both 01:30 are real half-hours of elapsed time
    fired = st.ticks("*/30 * * * *", NY, _utc(2026, 11, 1, 4, 59), _utc(2026, 11, 1, 7, 1))
    assert fired == [_utc(2026, 11, 1, 5), _utc(2026, 11, 1, 5, 30), _utc(2026, 11, 1, 6),
                     _utc(2026, 11, 1, 6, 30), _utc(2026, 11, 1, 7)]


def test_upcoming_is_in_the_schedule_timezone_and_crosses_dst():
    after = _utc(2026, 3, 6, 8)  # after Friday's 02:30 EST fire
    up = st.upcoming("30 2 * * *", NY, after, 5)
    assert [u.isoformat() for u in up] == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:30:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
        "2026-03-11T02:30:00-04:00",
    ]


def test_seconds_field_only_with_the_test_knob():
    with pytest.raises(InvalidCronError, match="expected 5 fields"):
        st.validate("* * * * * *", "UTC")
    assert st.validate("*/2 * * * * *", "UTC", allow_seconds=True) == "*/2 * * * * *"
    with pytest.raises(InvalidCronError, match="second must be between 0 and 59"):
        st.validate("60 * * * * *", "UTC", allow_seconds=True)
    t = _utc(2026, 1, 1, 0, 0, 1)
    assert st.next_after("*/2 * * * * *", "UTC", t, True) == _utc(2026, 1, 1, 0, 0, 2)


def test_catch_up_candidate_is_the_latest_tick_within_grace_only():
    now = _utc(2026, 5, 5, 12, 10, 30)
    # every minute, down since 12:00: only 12:10 is a candidate (one catch-up, no backlog)
    assert st.latest_tick("* * * * *", "UTC", now, 300) == _utc(2026, 5, 5, 12, 10)
    # hourly: 12:00 is 10.5 min ago — inside 15 min grace, outside 5 min grace
    assert st.latest_tick("0 * * * *", "UTC", now, 900) == _utc(2026, 5, 5, 12)
    assert st.latest_tick("0 * * * *", "UTC", now, 300) is None
