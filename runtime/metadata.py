"""``metadata``: a run's JSON document, changed in memory and flushed with the logs.

Writes outside a run are no-ops and reads return None, as in Trigger.dev. The 256 KB limit
is checked on every change with a clear error.
"""

from __future__ import annotations

import copy
from typing import Any

from .context import RunContext, current
from .engine_json import check_json_size
from .errors import MetadataTooLargeError, UnstorableValueError
from .secrets import safe_json


def _change(fn: Any) -> _Metadata:
    rc = current()
    if rc is None:
        return metadata
    rc.check_interrupts()
    with rc.lock:
        before = copy.deepcopy(rc.metadata)
        fn(rc.metadata)
        limit = rc.executor.settings.metadata_max_bytes
        try:  # a refused change is undone, whole
            check_json_size(rc.metadata, "metadata", limit, MetadataTooLargeError)
        except (MetadataTooLargeError, UnstorableValueError):
            rc.metadata = before
            raise
        rc.metadata_dirty = rc.metadata_touched = True
    return metadata


def _number(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key, 0)
    if not isinstance(value, int | float):
        raise TypeError(f"metadata[{key!r}] is not a number")
    return value


class _Metadata:
    def current(self) -> dict[str, Any] | None:
        rc = current()
        return copy.deepcopy(rc.metadata) if rc else None

    def get(self, key: str) -> Any:
        rc = current()
        return copy.deepcopy(rc.metadata.get(key)) if rc else None

    def set(self, key: str, value: Any) -> _Metadata:
        return _change(lambda d: d.__setitem__(key, safe_json(value)))

    def delete(self, key: str) -> _Metadata:
        return _change(lambda d: d.pop(key, None))

    del_ = delete

    def replace(self, document: dict[str, Any]) -> _Metadata:
        def go(d: dict[str, Any]) -> None:
            d.clear()
            d.update(safe_json(document))

        return _change(go)

    def append(self, key: str, value: Any) -> _Metadata:
        def go(d: dict[str, Any]) -> None:
            cur = d.get(key)
            d[key] = [
                *(cur if isinstance(cur, list) else [] if cur is None else [cur]),
                safe_json(value),
            ]

        return _change(go)

    def remove(self, key: str, value: Any) -> _Metadata:
        def go(d: dict[str, Any]) -> None:
            if isinstance(d.get(key), list):
                d[key] = [v for v in d[key] if v != safe_json(value)]

        return _change(go)

    def increment(self, key: str, amount: float = 1) -> _Metadata:
        return _change(lambda d: d.__setitem__(key, _number(d, key) + amount))

    def decrement(self, key: str, amount: float = 1) -> _Metadata:
        return self.increment(key, -amount)

    def flush(self) -> None:
        """Write the metadata (and buffered logs) now instead of at the next flush."""
        rc: RunContext | None = current()
        if rc is None:
            return
        with rc.lock:
            logs, rc.logs = rc.logs, []
            meta = dict(rc.metadata) if rc.metadata_dirty else None
            rc.metadata_dirty = False
        store = rc.executor.store
        store.write_buffers(logs, {rc.run_id: meta} if meta is not None else {})


metadata = _Metadata()
