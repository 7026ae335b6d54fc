"""``buster-jobs scheduler``: the timer loop (cron fires arrive with the scheduler issue)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence


def run_scheduler(modules: Sequence[str]) -> int:
    from .bootstrap import configure
    from .logs import setup_logging
    from .timer import TimerLoop

    setup_logging()
    rt = configure()
    timer = TimerLoop(rt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    timer.start()
    stop.wait()
    timer.stop()
    rt.close()
    return 0
