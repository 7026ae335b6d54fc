"""A thread beside a timer loop for work that may take long (posting run webhooks, pages of a
bulk action): it goes on at once while there is work, and waits ``interval_s`` when a step
found none, so the loop's delays, waits and leases are never held up by it."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("buster.timer")


class PollingThread:
    #: the thread's name, and what a failed step logs
    thread_name = "buster-poll"
    error_message = "polling step failed"
    error_action = "poll_error"

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> bool:
        """One round of work; True when there may be more at once."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = self.step()
            except Exception:
                log.exception(self.error_message, extra={"action": self.error_action})
            if not busy:
                self._stop.wait(self.interval_s)
