"""Debounced runs: one DELAYED run per (task, debounce key), pushed later by each trigger.

A trigger with ``debounce`` inserts its run DELAYED until ``now + delay`` with the key in
``debounce_key``. While that run is still DELAYED, a trigger of the same task with the same
key finds it (a partial unique index holds only DELAYED runs with a key: ix_runs_debounce)
and moves its start to the new trigger's ``now + delay``, no later than its
``debounce_until`` (the first trigger's time plus ``max_delay``). In ``trailing`` mode the
run also takes the new trigger's payload, metadata, tags, attempts, max duration and
machine. Once the timer promotes the run to QUEUED it leaves the index, and the next
trigger with the key starts a new run.

The run is locked while it is pushed (``FOR UPDATE``), so the timer's promotion waits for
the push and then sees the later start; a promotion that came first leaves nothing to find,
and the trigger inserts a new run. Two triggers inserting the first run at once meet in the
unique index: the loser finds the winner's run and pushes it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from ..statuses import RunStatus
from . import tables as t
from .repository import Store

#: what a ``trailing`` debounce takes from the latest trigger (Trigger.dev's list)
TRAILING_COLUMNS = ("payload", "metadata", "tags", "max_attempts", "max_duration", "machine",
                    "queue")


def debounce_run(store: Store, row: dict[str, Any], trailing: bool) -> tuple[str, bool]:
    """Insert ``row`` (DELAYED, with ``debounce_key``), or push the task's DELAYED run with
    that key to the row's start. Returns (the run's id, whether it was inserted)."""
    r = t.runs.c
    for _ in range(3):
        with store.engine.begin() as conn:
            found = conn.execute(
                select(r.id, r.debounce_until, r.ttl_seconds)
                .where(
                    r.task_identifier == row["task_identifier"],
                    r.debounce_key == row["debounce_key"],
                    r.status == RunStatus.DELAYED,
                )
                .with_for_update()
            ).first()
            if found is None:
                first = (
                    store._insert(t.runs)
                    .on_conflict_do_nothing(
                        index_elements=["task_identifier", "debounce_key"],
                        index_where=(r.debounce_key.is_not(None))
                        & (r.status == RunStatus.DELAYED),
                    )
                    .returning(r.id)
                )
                tags = [{"tag": tag, "run_id": row["id"]} for tag in row.get("tags") or []]
                if not store._insert_runs_on(conn, first, [row], tags):
                    continue  # another trigger inserted it first: push that one
                return row["id"], True
            run_id, until, ttl = found
            start = row["available_at"]
            if until is not None and start > until:  # max_delay reached
                start = until
            values: dict[str, Any] = {
                "available_at": start, "delay_until": start, "updated_at": row["updated_at"],
                # the TTL counts from the (new) start, as for any delayed run
                "expires_at": start + timedelta(seconds=ttl) if ttl else None,
            }
            if trailing:  # the run's tags too: its row's copy and the run_tags rows
                values.update({name: row[name] for name in TRAILING_COLUMNS})
                conn.execute(delete(t.run_tags).where(t.run_tags.c.run_id == run_id))
                if row.get("tags"):
                    conn.execute(insert(t.run_tags),
                                 [{"tag": tag, "run_id": run_id} for tag in row["tags"]])
            conn.execute(update(t.runs).where(r.id == run_id).values(**values))
            return run_id, False
    raise RuntimeError(
        f"debounce key of task {row['task_identifier']!r}: could not insert or find its run"
    )
