"""Group commit: many threads' single-row statements run as one multi-row statement.

A worker process runs 8 threads, each claiming and finishing one run at a time; every
statement costs a round trip, a commit and Postgres's per-statement work, whatever its row
count. ``GroupCommit.submit`` lets them share: a caller that finds no batch in flight runs
at once, alone (no added latency when idle); callers that arrive while one is in flight
queue up, and the next of them runs everything queued as one batch when it lands. Under
load the batch size grows by itself with the arrival rate; nobody ever waits on a timer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Slot:
    __slots__ = ("item", "result", "error", "done", "lead")

    def __init__(self, item: Any):
        self.item = item
        self.result: Any = None
        self.error: BaseException | None = None
        # a held lock as a one-shot signal: released once by whoever answers this slot.
        # threading.Event (a Condition, a waiter list, Python-level notify) cost ~12% of a
        # worker's GIL time at 500 runs/s; a bare lock is one C call each side.
        self.done = threading.Lock()
        self.done.acquire()
        self.lead = False


class GroupCommit(Generic[T, R]):
    """``run_batch(items) -> results`` (same length, same order) for items submitted from
    many threads. An exception from a batch is raised in every caller of that batch; an
    exception *returned* in place of a result is raised in that caller only.

    A caller must not be interrupted inside ``submit`` (an asynchronous exception would
    drop a leadership handed to it, and every later caller would wait): the worker submits
    claims and finishes outside the attempt, where the executor's interrupts are disarmed."""

    def __init__(self, run_batch: Callable[[list[T]], Sequence[R]], max_batch: int = 64):
        self._run_batch = run_batch
        self._max = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Slot] = []
        self._busy = False
        #: batches run and items in them (what the benchmark reports as the mean batch)
        self.batches = 0
        self.items = 0

    def submit(self, item: T) -> R:
        slot = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            lead = not self._busy
            self._busy = True
        if not lead:
            slot.done.acquire()
            if not slot.lead:
                return self._outcome(slot)
        # the leader: this slot is first in the queue, so its batch includes it
        with self._lock:
            batch = self._pending[: self._max]
            del self._pending[: self._max]
        try:
            results = self._run_batch([s.item for s in batch])
            for s, r in zip(batch, results, strict=True):
                s.result = r
        except BaseException as exc:
            for s in batch:
                s.error = exc
        finally:
            with self._lock:
                self.batches += 1
                self.items += len(batch)
                if self._pending:  # hand over: the oldest waiter runs the next batch
                    nxt = self._pending[0]
                    nxt.lead = True
                    nxt.done.release()
                else:
                    self._busy = False
            for s in batch:
                if s is not slot:
                    s.done.release()
        return self._outcome(slot)

    @staticmethod
    def _outcome(slot: _Slot) -> Any:
        if slot.error is not None:
            raise slot.error
        if isinstance(slot.result, BaseException):
            raise slot.result
        return slot.result
