"""Errors as the SDK reads them: ``{"error": "message"}`` with the status it maps to a class
(400 BadRequest, 401 Authentication, 404 NotFound, 409 Conflict — retried, 413, 422
UnprocessableEntity). Runtime errors are translated here, once."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from runtime import errors as rerr
from runtime.cron import InvalidCronError


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra

    def response(self) -> JSONResponse:
        headers = {"x-should-retry": "false"} if self.status >= 500 else None
        return JSONResponse({"error": self.message, **self.extra}, self.status, headers=headers)


def _schedule_errors() -> dict[type, int]:
    try:
        from runtime.schedules_api import InvalidScheduleError, ScheduleNotFoundError
    except ImportError:  # the schedules area is not installed
        return {}
    return {ScheduleNotFoundError: 404, InvalidScheduleError: 422}


def translate(exc: Exception) -> ApiError | None:
    """Our runtime's error tree → API status; None for errors that are our fault (500)."""
    table: dict[type, int] = {
        rerr.RunNotFoundError: 404,
        rerr.TaskNotFoundError: 404,
        rerr.TokenNotFoundError: 404,
        rerr.PayloadValidationError: 422,
        rerr.MetadataTooLargeError: 422,
        rerr.UnstorableValueError: 422,
        rerr.OutputTooLargeError: 413,
        rerr.InvalidTriggerOptionsError: 422,
        rerr.SharedQueueMemberError: 409,
        InvalidCronError: 422,
        **_schedule_errors(),
    }
    try:
        from runtime.datasources import DataSourceNotFoundError

        table[DataSourceNotFoundError] = 404
    except ImportError:
        pass
    for kind, status in table.items():
        if isinstance(exc, kind):
            return ApiError(status, str(exc))
    return None
