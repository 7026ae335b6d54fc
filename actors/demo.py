"""A small demo task: shows logs, metadata, retries and a durable step end to end."""

from __future__ import annotations

from runtime import RetryOptions, logger, metadata, task, wait


@task(id="demo-sum", retry=RetryOptions(max_attempts=2, min_timeout_ms=100), max_duration=60)
def demo_sum(payload: dict) -> dict:
    numbers = [float(n) for n in payload.get("numbers", [])]
    logger.info("summing", count=len(numbers))
    total = 0.0
    for i, n in enumerate(numbers, 1):
        total += n
        metadata.set("progress", i / len(numbers))
    checked = wait.step("double-check", lambda: sum(numbers))
    return {"total": total, "count": len(numbers), "checked": checked}
