"""Scheduled tasks for tests/integration/test_schedules.py (importable by subprocesses as
``tests.integration.schedule_tasks``)."""

from __future__ import annotations

import time
from typing import Any

from runtime import schedules


@schedules.task(id="t-sched")
def sched(payload: schedules.ScheduledPayload) -> dict[str, Any]:
    return {"timestamp": payload.timestamp.isoformat()}


@schedules.task(id="t-sched-slow")
def sched_slow(payload: schedules.ScheduledPayload) -> dict[str, Any]:
    # the schedule's external_id carries how long to run (seconds)
    time.sleep(float(payload.external_id or 1))
    return {"timestamp": payload.timestamp.isoformat()}


@schedules.task(id="t-sched-decl", cron={"pattern": "0 9 * * 1-5", "timezone": "Europe/Paris"})
def sched_decl(payload: schedules.ScheduledPayload) -> dict[str, Any]:
    return {"type": payload.type}
