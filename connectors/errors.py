"""Our own error tree for warehouse connectors.

Every driver exception is translated at the edge (inside the connector module that owns
the driver) into one of these, with the driver's exception chained as ``__cause__``.
Callers decide on retries from our types, never from driver types or message text::

    ConnectorError                      CONNECTOR_ERROR
    ├── ConnectionFailedError           CONNECTION_FAILED     retryable
    │   └── HostUnreachableError        HOST_UNREACHABLE      retryable  (DNS, refused, no route)
    ├── AuthenticationError             AUTH_FAILED
    ├── PermissionDeniedError           PERMISSION_DENIED
    ├── DatabaseNotFoundError           DATABASE_NOT_FOUND
    ├── QueryTimeoutError               QUERY_TIMEOUT         retryable
    ├── QueryError                      QUERY_FAILED
    │   └── ReadOnlyViolationError      READ_ONLY_VIOLATION
    ├── MissingDriverError              MISSING_DRIVER
    └── InvalidCredentialsError         INVALID_CREDENTIALS

Messages never carry a secret: :func:`scrub` removes the credential's secret values (and
``password=...``-style fragments) from driver text before it reaches our message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "AuthenticationError",
    "ConnectionFailedError",
    "ConnectorError",
    "DatabaseNotFoundError",
    "HostUnreachableError",
    "InvalidCredentialsError",
    "MissingDriverError",
    "PermissionDeniedError",
    "QueryError",
    "QueryTimeoutError",
    "ReadOnlyViolationError",
    "scrub",
]

MASK = "***"


class ConnectorError(Exception):
    """Base of every error a connector raises."""

    code: str = "CONNECTOR_ERROR"
    retryable: bool = False

    def __init__(self, message: str, *, warehouse: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.warehouse = warehouse

    def to_dict(self) -> dict[str, str | bool]:
        """The shape task outputs use for ``error``: stable code, readable message."""
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class ConnectionFailedError(ConnectorError):
    """The connection could not be made or was lost; usually worth another try."""

    code = "CONNECTION_FAILED"
    retryable = True


class HostUnreachableError(ConnectionFailedError):
    """DNS failure, connection refused, or no answer before the connect timeout."""

    code = "HOST_UNREACHABLE"


class AuthenticationError(ConnectorError):
    """Wrong user, password, key or token. Retrying would only lock the account."""

    code = "AUTH_FAILED"


class PermissionDeniedError(ConnectorError):
    """Authenticated, but not allowed to read this object."""

    code = "PERMISSION_DENIED"


class DatabaseNotFoundError(ConnectorError):
    """The database (catalog, project, dataset) named in the credentials does not exist."""

    code = "DATABASE_NOT_FOUND"


class QueryTimeoutError(ConnectorError):
    """The warehouse stopped the statement because it ran longer than its timeout."""

    code = "QUERY_TIMEOUT"
    # Transient load is the usual cause; the caller's retry policy bounds the attempts.
    retryable = True


class QueryError(ConnectorError):
    """The warehouse rejected the statement (syntax, unknown column, type error, ...)."""

    code = "QUERY_FAILED"


class ReadOnlyViolationError(QueryError):
    """The statement tried to write; connectors open read-only sessions."""

    code = "READ_ONLY_VIOLATION"


class MissingDriverError(ConnectorError):
    """The warehouse's driver is not installed; the message names the extra to install."""

    code = "MISSING_DRIVER"

    def __init__(self, warehouse: str, extra: str, module: str) -> None:
        super().__init__(
            f"The {warehouse} connector needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'buster-jobs[{extra}]'",
            warehouse=warehouse,
        )
        self.extra = extra
        self.module = module


class InvalidCredentialsError(ConnectorError):
    """The credentials failed validation; ``errors`` lists ``(field path, message)``."""

    code = "INVALID_CREDENTIALS"

    def __init__(
        self, errors: list[tuple[str, str]], *, warehouse: str | None = None
    ) -> None:
        lines = "\n".join(f"  {path}: {msg}" for path, msg in errors)
        super().__init__(f"Invalid credentials:\n{lines}", warehouse=warehouse)
        self.errors = errors


# ``password=secret`` / ``pwd: secret`` / ``token=...`` fragments as drivers echo DSNs.
_KEY_VALUE_SECRET = re.compile(
    r"(?i)\b(password|passwd|pwd|token|access_token|secret|private_key|passphrase)"
    r"(\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s;,&)]+)"
)
# ``scheme://user:password@host`` in URLs.
_URL_PASSWORD = re.compile(r"(//[^:/@\s]+:)([^@/\s]+)(@)")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove secret values and password-looking fragments from ``text``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        # Very short secrets would mask innocent text ("a"); they are still masked when
        # they appear as key=value below.
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _KEY_VALUE_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
