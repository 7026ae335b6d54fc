"""Values shared by a run's middleware, hooks and task function for one attempt
(Trigger.dev v4's ``locals``; named ``run_locals`` here so it does not shadow Python's
``locals()`` where it is imported).

    DB = run_locals.create("db")

    @tasks.middleware("db")
    def db(payload, ctx, next):
        with connect() as conn:
            run_locals.set(DB, conn)
            next()

    @task(id="report")
    def report(payload):
        conn = run_locals.get_or_raise(DB)

The values live as long as the attempt's execution: a retry, or a run resuming after a
wait, starts without them (its middleware runs again and sets them again).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .context import current
from .errors import NotInRunError

T = TypeVar("T")
_ids = itertools.count(1)


@dataclass(frozen=True)
class LocalKey(Generic[T]):
    """A key made by ``run_locals.create(name)``: two keys never collide, whatever their
    names (the name is for messages)."""

    name: str
    id: int = field(default_factory=lambda: next(_ids))


class RunLocals:
    def create(self, name: str) -> LocalKey[Any]:
        return LocalKey(name)

    def set(self, key: LocalKey[T], value: T) -> None:
        rc = current()
        if rc is None:
            raise NotInRunError(f"run_locals.set({key.name!r}) can only be called inside a run")
        rc.locals[key.id] = value

    def get(self, key: LocalKey[T], default: T | None = None) -> T | None:
        rc = current()
        if rc is None:
            return default
        return rc.locals.get(key.id, default)

    def get_or_raise(self, key: LocalKey[T]) -> T:
        rc = current()
        if rc is None or key.id not in rc.locals:
            raise KeyError(
                f"run local {key.name!r} is not set in this run (set it in a middleware or "
                "hook before the task reads it)"
            )
        return rc.locals[key.id]


run_locals = RunLocals()
