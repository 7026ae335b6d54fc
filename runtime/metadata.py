"""``metadata``: a run's JSON document, changed in memory and flushed with the logs.

Writes outside a run are no-ops and reads return None, as in Trigger.dev. The 256 KB limit
is checked on every change with a clear error.

``metadata.parent`` and ``metadata.root`` change the parent's or the root run's document
instead (progress counters of a fan-out). Those changes are operations, not documents:
sent with the next flush, and applied in order to the target by its own worker while it
executes (it owns its document in memory; see Executor.flush) or by the timer loop
otherwise, so concurrent children never overwrite each other.
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


def _replaying(rc: RunContext) -> bool:
    from .waits import replaying  # waits imports the store, which imports this module

    return replaying(rc)


def _number(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key, 0)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"metadata[{key!r}] is not a number")
    return value


def apply_op(doc: dict[str, Any], op: dict[str, Any]) -> None:
    """One change (``{"op": "set", "key": k, "value": v}``...) to a document, in place.
    Raises TypeError for an increment of a value that is not a number."""
    kind, key = op["op"], str(op.get("key"))
    if kind == "set":
        doc[key] = op["value"]
    elif kind == "delete":
        doc.pop(key, None)
    elif kind == "replace":
        doc.clear()
        doc.update(op["value"])
    elif kind == "append":
        cur = doc.get(key)
        doc[key] = [*(cur if isinstance(cur, list) else [] if cur is None else [cur]),
                    op["value"]]
    elif kind == "remove":
        if isinstance(doc.get(key), list):
            doc[key] = [v for v in doc[key] if v != op["value"]]
    elif kind == "increment":
        doc[key] = _number(doc, key) + op["value"]
    else:
        raise ValueError(f"unknown metadata operation {kind!r}")


def apply_ops(
    doc: dict[str, Any], ops: list[dict[str, Any]], limit: int
) -> tuple[dict[str, Any], list[str]]:
    """``ops`` applied in order to a copy of ``doc``; an operation that cannot apply (an
    increment of text) or would take the document over ``limit`` bytes is skipped. Returns
    the document and why each skipped operation was."""
    out = copy.deepcopy(doc)
    try:
        for op in ops:
            apply_op(out, op)
        check_json_size(out, "metadata", limit, MetadataTooLargeError)
        return out, []
    except (TypeError, ValueError):  # MetadataTooLargeError is a ValueError
        pass
    # one at a time, to keep every operation that can apply
    out, skipped = copy.deepcopy(doc), []
    for op in ops:
        trial = copy.deepcopy(out)
        try:
            apply_op(trial, op)
            check_json_size(trial, "metadata", limit, MetadataTooLargeError)
        except (TypeError, ValueError) as exc:
            skipped.append(f"{op['op']} {op.get('key')!r}: {exc}")
            continue
        out = trial
    return out, skipped


class _Metadata:
    def current(self) -> dict[str, Any] | None:
        rc = current()
        return copy.deepcopy(rc.metadata) if rc else None

    def get(self, key: str) -> Any:
        rc = current()
        return copy.deepcopy(rc.metadata.get(key)) if rc else None

    def set(self, key: str, value: Any) -> _Metadata:
        return self._op({"op": "set", "key": key, "value": safe_json(value)})

    def delete(self, key: str) -> _Metadata:
        return self._op({"op": "delete", "key": key})

    del_ = delete

    def replace(self, document: dict[str, Any]) -> _Metadata:
        return self._op({"op": "replace", "value": safe_json(document)})

    def append(self, key: str, value: Any) -> _Metadata:
        return self._op({"op": "append", "key": key, "value": safe_json(value)})

    def remove(self, key: str, value: Any) -> _Metadata:
        return self._op({"op": "remove", "key": key, "value": safe_json(value)})

    def increment(self, key: str, amount: float = 1) -> _Metadata:
        if isinstance(amount, bool) or not isinstance(amount, int | float):
            raise TypeError(f"metadata increment of {key!r} must be a number, not {amount!r}")
        return self._op({"op": "increment", "key": key, "value": amount})

    def decrement(self, key: str, amount: float = 1) -> _Metadata:
        return self.increment(key, -amount)

    def _op(self, op: dict[str, Any]) -> _Metadata:
        rc = current()
        if rc is not None and _replaying(rc):
            # the execution that first ran this code made the change, and the document
            # this one started from holds it: an increment made again would count twice
            rc.check_interrupts()
            return self
        _change(lambda d: apply_op(d, op))
        return self

    def flush(self) -> None:
        """Write the metadata, changes to the parent's and root's, and buffered logs now
        instead of at the next flush."""
        rc: RunContext | None = current()
        if rc is None:
            return
        with rc.lock:
            logs, rc.logs = rc.logs, []
            meta = dict(rc.metadata) if rc.metadata_dirty else None
            rc.metadata_dirty = False
            sent, rc.sent_ops = rc.sent_ops, []
        store = rc.executor.store
        store.write_buffers(logs, {rc.run_id: meta} if meta is not None else {}, sent)

    @property
    def parent(self) -> _OtherRunMetadata:
        """The parent run's document (a no-op in a run without a parent)."""
        return _PARENT

    @property
    def root(self) -> _OtherRunMetadata:
        """The root run's document: the run that started the tree (this run's own, in a
        root run)."""
        return _ROOT


class _OtherRunMetadata(_Metadata):
    """``metadata.parent`` / ``metadata.root``: the same changes, sent to that run. Reads
    are not served (another run's document is not in memory): they return None."""

    def __init__(self, which: str):
        self._which = which

    def current(self) -> dict[str, Any] | None:
        return None

    def get(self, key: str) -> Any:
        return None

    def replace(self, document: dict[str, Any]) -> _Metadata:
        raise TypeError(f"metadata.{self._which} cannot replace another run's document; "
                        "set its keys instead")

    def flush(self) -> None:
        metadata.flush()

    @property
    def parent(self) -> _OtherRunMetadata:
        raise AttributeError(f"metadata.{self._which}.parent is not served: a run changes "
                             "its parent's and its root's metadata, not a grandparent's")

    @property
    def root(self) -> _OtherRunMetadata:
        raise AttributeError(f"metadata.{self._which}.root is not served: use metadata.root")

    def _op(self, op: dict[str, Any]) -> _Metadata:
        rc = current()
        if rc is None:
            return self
        rc.check_interrupts()
        own = rc.run["root_id"] or rc.run_id
        target = rc.run["parent_id"] if self._which == "parent" else own
        if target is None:
            return self
        if target == rc.run_id:
            return metadata._op(op)
        if _replaying(rc):
            return self  # the execution that first ran this code sent it
        # the same refusal as a change of the run's own: a NUL, or a value over the limit
        check_json_size(op, "metadata", rc.executor.settings.metadata_max_bytes,
                        MetadataTooLargeError)
        with rc.lock:
            rc.sent_ops.append((str(target), op))
        return self


metadata = _Metadata()
_PARENT = _OtherRunMetadata("parent")
_ROOT = _OtherRunMetadata("root")
