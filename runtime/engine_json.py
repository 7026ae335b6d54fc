"""What the run store can hold of a JSON value: its size (limits on payloads and metadata)
and whether it holds a NUL character, which Postgres refuses in both jsonb and text.

A value with a NUL must be refused where it is made — at the trigger, at the metadata
call, when an attempt returns its output — with an error naming where it is: refused
later, by the statement that ends an attempt, it would leave the run executing until its
lease lapsed. Diagnostic text (log lines, error messages) is escaped instead of refused.
"""

from __future__ import annotations

from typing import Any

from .errors import UnstorableValueError
from .store.engine import dumps

NUL = "\x00"
_NUL_MESSAGE = "contains a NUL character (\\u0000), which the run store cannot hold"


def json_size(value: Any) -> int:
    return len(dumps(value).encode())


def storable_json_size(value: Any, what: str) -> int:
    """``json_size`` that raises ``UnstorableValueError`` naming the first string (key or
    value) holding a NUL. The search runs only when the JSON text shows an escaped NUL, so
    the common case costs one substring test on text that is made anyway."""
    text = dumps(value)
    if "\\u0000" in text:
        check_storable(value, what)
    return len(text.encode())


def check_storable(value: Any, what: str) -> None:
    """Raise ``UnstorableValueError`` if a string (key or value) in ``value`` holds a NUL."""
    where = _nul_path(value, what)
    if where is not None:
        raise UnstorableValueError(f"{where} {_NUL_MESSAGE}")


def _nul_path(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and NUL in k:
                return f"{path} (a key)"
            found = _nul_path(v, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = _nul_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def escape_nul(value: Any) -> Any:
    """``value`` with every NUL in its strings (keys too) written as the text ``\\u0000``."""
    if isinstance(value, str):
        return value.replace(NUL, "\\u0000") if NUL in value else value
    if isinstance(value, dict):
        return {escape_nul(k): escape_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_nul(v) for v in value]
    return value
