"""How introspection failures end a run.

The choice, as in Buster's TypeScript task: a failure that another attempt cannot fix ends
the run COMPLETED with ``success: false`` and ``error {code, message}`` — callers read one
output shape, dashboards don't show a retry storm, and a wrong password is not tried three
times (which locks accounts on some warehouses). Only a transient failure (a connection
lost mid-way, a statement timeout) raises :class:`TransientIntrospectionError`, which the
runtime retries with backoff; on the last attempt it becomes ``success: false`` as well.

An unreachable host (DNS, refused, connect timeout) counts as final here: it is almost
always a wrong host/port or a firewall, and the person who triggered the run needs to hear
that at once.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from connectors import ConnectorError, HostUnreachableError
from runtime.datasources import DataSourceError

from .schemas import ErrorInfo

__all__ = ["TransientIntrospectionError", "error_info", "is_transient"]


class TransientIntrospectionError(Exception):
    """Retryable: raised *from None* so the driver's text (and anything it echoed) stays out
    of the stored stack trace; the message is the connector's already-scrubbed one."""

    def __init__(self, error: ConnectorError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.code = error.code


def is_transient(exc: BaseException) -> TypeGuard[ConnectorError]:
    return (
        isinstance(exc, ConnectorError)
        and exc.retryable
        and not isinstance(exc, HostUnreachableError)
    )


def error_info(exc: ConnectorError | DataSourceError) -> ErrorInfo:
    return ErrorInfo(code=exc.code, message=getattr(exc, "message", None) or str(exc))


def last_attempt(ctx: Any) -> bool:
    return int(ctx.attempt.get("number") or 1) >= int(ctx.run.max_attempts or 1)
