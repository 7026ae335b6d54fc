"""Polling helpers for tests (no fixed sleeps)."""

from __future__ import annotations

import time
from typing import Any


def wait_for(predicate: Any, timeout: float = 20, interval: float = 0.05) -> Any:
    """Poll until ``predicate()`` is truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")


def wait_final(run_id: str, timeout: float = 30) -> Any:
    from runtime import runs

    return wait_for(lambda: (r := runs.retrieve(run_id)).is_completed and r, timeout)
