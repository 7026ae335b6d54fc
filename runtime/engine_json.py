"""Size of a value as stored JSON (limits on payloads and metadata)."""

from __future__ import annotations

from typing import Any

from .store.engine import dumps


def json_size(value: Any) -> int:
    return len(dumps(value).encode())
