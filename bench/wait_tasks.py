"""Tasks for bench/waits.py (imported by the benchmark's worker subprocess)."""

from __future__ import annotations

from runtime import task, wait


@task(id="bench-wait")
def bench_wait(payload: dict) -> dict:
    wait.for_(seconds=payload["seconds"])
    return {}


@task(id="bench-sleep")
def bench_sleep(payload: dict) -> dict:
    # the baseline: a wait that holds its worker thread, as self-hosted Trigger.dev v4 does
    import time

    time.sleep(payload["seconds"])
    return {}
