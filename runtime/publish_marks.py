"""Deferred ``published_at`` marks for single triggers.

After a run's message is confirmed by the broker, the run is marked published so the timer
loop won't publish it again. For one-off triggers that mark is batched: a background thread
writes the ids collected over ``flush_seconds`` in one UPDATE, so a trigger costs one
statement (the insert) plus the publish instead of two commits. A mark that never lands
(process killed) only means the timer loop publishes once more after its grace period, and
the claim drops the duplicate. The grace must exceed ``flush_seconds``.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

log = logging.getLogger("buster.publish")


class PublishMarks:
    def __init__(self, store: Any, flush_seconds: float = 0.05):
        self.store = store
        self.flush_seconds = flush_seconds
        self._ids: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(self, ids: list[str]) -> None:
        with self._lock:
            self._ids.extend(ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="buster-publish-marks", daemon=True
                )
                self._thread.start()
                # a short-lived producer (the CLI) exits without closing the runtime
                atexit.register(self.flush)

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_seconds)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            ids, self._ids = self._ids, []
        if not ids:
            return
        try:
            self.store.mark_published(ids)
        except Exception:  # the timer loop republishes them: a duplicate, never a loss
            log.warning("could not mark %d runs published", len(ids), exc_info=True)

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
