"""Changes one run sends to another's metadata (``metadata.parent.*``, ``metadata.root.*``).

A run's own metadata lives in its worker's memory while it executes and is written whole,
so a change from a child cannot be written into the target's row then: the target's next
flush would write over it. Changes are therefore queued as operations
(``run_metadata_ops``) and applied in order by whoever owns the target's document:

- its worker, while it executes: ``take_for_executing`` deletes and returns the queued
  operations of the runs the worker holds (once per flush tick), and the worker applies
  them to the documents in its memory, which the next flush writes;
- the timer loop, otherwise (waiting, queued, finished): ``apply_queued`` locks the target
  rows that are not executing, applies their operations and deletes them, in one
  transaction; a claim waits for that lock, so it reads the changed document.

Operations taken for a run the worker no longer holds are queued again (``queue``), for
the timer loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, select, update

from ..durations import utcnow
from ..metadata import apply_ops
from ..statuses import RunStatus
from . import tables as t

if TYPE_CHECKING:
    from .repository import Store

log = logging.getLogger("buster.metadata")

Op = dict[str, Any]


def rows_for(sent: Sequence[tuple[str, Op]]) -> list[dict[str, Any]]:
    """(target, op) pairs in the order they were made -> one row per target, its ops in
    order (the order between different targets does not matter)."""
    by_target: dict[str, list[Op]] = {}
    for target, op in sent:
        by_target.setdefault(target, []).append(op)
    now = utcnow()
    return [{"run_id": target, "ops": ops, "created_at": now} for target, ops in by_target.items()]


def queue(conn: Any, sent: Sequence[tuple[str, Op]]) -> None:
    """Queue operations inside the caller's transaction. A target that no longer exists
    (deleted by retention) drops its operations, as a final run's would be useless."""
    rows = rows_for(sent)
    if not rows:
        return
    ids = [r["run_id"] for r in rows]
    existing = set(conn.execute(select(t.runs.c.id).where(t.runs.c.id.in_(ids))).scalars())
    rows = [r for r in rows if r["run_id"] in existing]
    if rows:
        conn.execute(insert(t.run_metadata_ops), rows)


def take_for_executing(store: Store, run_ids: Sequence[str]) -> dict[str, list[Op]]:
    """Delete and return the queued operations of these runs, each run's in order."""
    if not run_ids:
        return {}
    o = t.run_metadata_ops.c
    with store.engine.begin() as conn:
        rows = conn.execute(
            delete(t.run_metadata_ops)
            .where(o.run_id.in_(list(run_ids)))
            .returning(o.id, o.run_id, o.ops)
        ).all()
    out: dict[str, list[Op]] = {}
    for _, run_id, ops in sorted(rows, key=lambda row: row[0]):
        out.setdefault(run_id, []).extend(ops)
    return out


def apply_queued(store: Store, limit: int, max_bytes: int) -> int:
    """Apply the queued operations of up to ``limit`` runs that are not executing; returns
    how many runs changed. An operation that cannot apply (an increment of text, a
    document over the limit) is skipped and logged; the others still apply."""
    o, r = t.run_metadata_ops.c, t.runs.c
    with store.engine.begin() as conn:
        targets = select(o.run_id).distinct().limit(limit).scalar_subquery()
        runs = conn.execute(
            select(r.id, r.metadata)
            .where(r.id.in_(targets), r.status != RunStatus.EXECUTING)
            .with_for_update(skip_locked=True)
        ).all()
        if not runs:
            return 0
        docs = {run_id: doc or {} for run_id, doc in runs}
        queued = conn.execute(
            select(o.id, o.run_id, o.ops).where(o.run_id.in_(list(docs))).order_by(o.id)
        ).all()
        ops: dict[str, list[Op]] = {}
        for _, run_id, batch in queued:
            ops.setdefault(run_id, []).extend(batch)
        changed = []
        for run_id, run_ops in ops.items():
            doc, skipped = apply_ops(docs[run_id], run_ops, max_bytes)
            for why in skipped:
                log.warning("metadata change to run %s skipped: %s", run_id, why,
                            extra={"run_id": run_id, "action": "metadata_op_skipped"})
            changed.append({"rid": run_id, "meta": doc})
        if changed:
            conn.execute(
                update(t.runs)
                .where(r.id == bindparam("rid"))
                .values(metadata=bindparam("meta", type_=t.Json), updated_at=utcnow()),
                changed,
            )
        conn.execute(delete(t.run_metadata_ops).where(o.id.in_([row[0] for row in queued])))
        return len(changed)

