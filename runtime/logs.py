"""Process logging: handlers are configured only in entry points.

Every record carries the run id when emitted inside a run (a filter stamps it, as DBOS
does), and Python ``logging`` records emitted inside a run are also captured into that run's
log buffer, so task code that uses ``logging`` shows up on the run page.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from .context import current

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class RunIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rc = current()
        if rc is not None and not hasattr(record, "run_id"):
            record.run_id = rc.run_id
        return True


class RunCaptureHandler(logging.Handler):
    """Copies records emitted inside a run (other than our own) into its log buffer."""

    def emit(self, record: logging.LogRecord) -> None:
        rc = current()
        if rc is None or record.name.startswith("buster."):
            return
        try:
            from .secrets import safe_json

            attrs = {k: v for k, v in record.__dict__.items() if k not in _STD and k != "run_id"}
            rc.executor.log_line(
                rc,
                _level(record.levelno),
                record.getMessage(),
                {"logger": record.name, **safe_json(attrs)},
            )
        except Exception:  # pragma: no cover - logging must never break a run
            self.handleError(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        body.update({k: v for k, v in record.__dict__.items() if k not in _STD})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def _level(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def install_capture() -> None:
    root = logging.getLogger()
    if not any(isinstance(h, RunCaptureHandler) for h in root.handlers):
        root.addHandler(RunCaptureHandler(level=logging.DEBUG))


def setup_logging(level: str | None = None, fmt: str | None = None) -> None:
    level = level or os.environ.get("BUSTER_LOG_LEVEL", "INFO")
    fmt = fmt or os.environ.get("BUSTER_LOG_FORMAT", "text")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RunIdFilter())
    handler.setFormatter(
        JsonFormatter()
        if fmt == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if isinstance(h, RunCaptureHandler)]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("pika", "dramatiq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_capture()
