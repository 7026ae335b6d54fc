"""``logger``: structured run logs (debug, log, info, warn, error) with attributes.

Lines go to the run's buffer and reach the store at least every ``log_flush_seconds`` and
at every state change — never one round trip per line. Outside a run they go to Python
logging. Each call also checks for cancellation, so a canceled run stops at its next log.
"""

from __future__ import annotations

import logging
from typing import Any

from .context import current
from .secrets import safe_json

_py = logging.getLogger("buster.task")
_LEVELS = {
    "debug": logging.DEBUG,
    "log": logging.INFO,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def _emit(level: str, message: str, attrs: dict[str, Any]) -> None:
    rc = current()
    if rc is None:
        _py.log(_LEVELS[level], message, extra={"attributes": safe_json(attrs)})
        return
    rc.check_interrupts()
    rc.executor.log_line(rc, level, str(message), safe_json(attrs))


class _Logger:
    def debug(self, message: str, **attrs: Any) -> None:
        _emit("debug", message, attrs)

    def log(self, message: str, **attrs: Any) -> None:
        _emit("log", message, attrs)

    def info(self, message: str, **attrs: Any) -> None:
        _emit("info", message, attrs)

    def warn(self, message: str, **attrs: Any) -> None:
        _emit("warn", message, attrs)

    warning = warn

    def error(self, message: str, **attrs: Any) -> None:
        _emit("error", message, attrs)


logger = _Logger()
