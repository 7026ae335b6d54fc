"""Durable steps when running inside a task run, plain calls outside one (unit tests,
benchmarks): the agent code is the same either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from runtime import wait
from runtime.context import current

T = TypeVar("T")


def step(name: str, fn: Callable[[], T]) -> T:
    if current() is None:
        return fn()
    return wait.step(name, fn)


def in_run() -> bool:
    return current() is not None
