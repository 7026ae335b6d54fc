"""``Result`` of a child run or a wait token, as Trigger.dev's ``{ ok, output | error }``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import SubtaskUnwrapError

T = TypeVar("T")


@dataclass(frozen=True)
class Result(Generic[T]):
    ok: bool
    id: str
    output: T | None = None
    error: Any = None
    task_identifier: str | None = None
    status: str | None = None

    def unwrap(self) -> T:
        if self.ok:
            return self.output  # type: ignore[return-value]
        raise SubtaskUnwrapError(self.id, self.task_identifier or "?", self.error)
