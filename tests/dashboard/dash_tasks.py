"""Tasks the dashboard tests drive over HTTP (worker subprocesses import this module)."""

from __future__ import annotations

import time
from typing import Any

from runtime import logger, metadata, schedules, task, wait


@task(id="dash-wait-token")
def wait_token(payload: dict) -> dict:
    result = wait.for_token(payload["tokenId"])
    return {"ok": result.ok, "data": result.output}


@task(id="dash-progress", max_duration=120)
def progress(payload: dict) -> dict:
    """Changes its metadata every ``interval`` seconds: the live views watch it."""
    steps, interval = payload.get("steps", 100), payload.get("interval", 0.4)
    for i in range(steps):
        metadata.set("step", i)
        logger.info(f"step {i}", step=i)
        time.sleep(interval)
    return {"steps": steps}


@task(id="dash-secret")
def secret_task(payload: Any) -> dict:
    return {"seen": True}


@schedules.task(id="dash-scheduled")
def scheduled(payload: Any) -> dict:
    return {"fired": True}
