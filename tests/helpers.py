"""Polling helpers for tests (no fixed sleeps), and ports for the servers tests start."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path
from typing import Any

_PICK = random.SystemRandom()


def free_port() -> int:
    """A free port for a test server, picked below the kernel's ephemeral range. A port the
    kernel hands out (a probe bound to port 0, any outgoing connection) can be taken by
    another socket between this probe and the server's bind; below the range only test
    code picks ports, at random among ~20,000."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = _PICK.randrange(10000, max(10001, low))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # nothing free below the range: take the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
