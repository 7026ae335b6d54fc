"""The state of the attempt running on this thread: the run, its log and metadata buffers,
and the replay cursor. Task code reaches it through ``logger``, ``metadata`` and ``wait``."""

from __future__ import annotations

import contextvars
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ConcurrentWaitError, MaxDurationExceeded, RunCanceled

if TYPE_CHECKING:
    from .executor import Executor
    from .task import Task

_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "buster_run", default=None
)


@dataclass
class RunInfo:
    """``ctx.run`` for task code (Trigger.dev's ctx.run)."""

    id: str
    tags: list[str]
    created_at: Any
    started_at: Any
    idempotency_key: str | None
    max_attempts: int
    max_duration: float | None
    is_replay: bool
    parent_id: str | None
    root_id: str | None
    batch_id: str | None
    depth: int


@dataclass
class TaskContext:
    """The ``ctx`` argument: ``ctx.run``, ``ctx.task``, ``ctx.attempt``, ``ctx.queue``…"""

    run: RunInfo
    task: dict[str, Any]
    attempt: dict[str, Any]
    queue: dict[str, Any]
    machine: dict[str, Any]


@dataclass
class RunContext:
    run: Any  # the claimed run row
    task: Task[Any]
    executor: Executor
    attempt: int
    resumed: bool
    ctx: TaskContext
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_dirty: bool = False  # changed since the last periodic flush
    metadata_touched: bool = False  # changed during this attempt (the final write has it)
    logs: list[dict[str, Any]] = field(default_factory=list)
    locals: dict[int, Any] = field(default_factory=dict)  # run_locals, this execution only
    #: changes to another run's metadata (metadata.parent/root), sent with the next flush
    sent_ops: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # replay cursor: records of earlier executions, and the position of the next call
    steps: list[Any] | None = None
    seq: int = 0
    waiting: bool = False
    canceled: bool = False
    timed_out: bool = False
    thread_id: int = field(default_factory=threading.get_ident)
    segment_started: float = field(default_factory=time.monotonic)

    @property
    def run_id(self) -> str:
        return str(self.run["id"])

    def check_interrupts(self) -> None:
        """Called from log, metadata and wait calls: stop promptly once canceled."""
        if self.canceled:
            raise RunCanceled()
        if self.timed_out:
            raise MaxDurationExceeded()

    def enter_wait(self) -> None:
        if threading.get_ident() != self.thread_id or self.waiting:
            raise ConcurrentWaitError(
                "a run can wait on one thing at a time (no waits in threads or concurrent "
                "futures); use batch_trigger_and_wait to wait for several children"
            )
        self.waiting = True

    def exit_wait(self) -> None:
        self.waiting = False


def current() -> RunContext | None:
    return _current.get()


def set_current(ctx: RunContext | None) -> contextvars.Token[RunContext | None]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[RunContext | None]) -> None:
    _current.reset(token)
