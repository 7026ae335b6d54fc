"""All SQL against our own tables. Nothing else in the project writes to them.

Every state change is a conditional UPDATE (``WHERE status = … AND lease_owner = …``) so two
processes can race on a run and at most one wins; what the database guarantees we don't
check-then-act in Python. Hot-path statements run in autocommit: one round trip each.
"""

from __future__ import annotations

import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import DBAPIError

from ..durations import utcnow
from ..group_commit import GroupCommit
from ..ids import timestamp_prefix
from ..statuses import CANCELABLE_STATUSES, KEY_RELEASING_STATUSES, RunStatus
from . import metadata_ops
from . import tables as t
from .engine import dumps

Row = RowMapping


class Store:
    """The run store: one engine, named operations."""

    def __init__(self, engine: Engine):
        self.engine = engine
        #: the final statuses some run webhook wants, as of now (the runtime sets it:
        #: runtime/run_webhook_endpoints.py): the statement that ends a run in one of them
        #: sets its notify_pending flag. None: no run is flagged
        self.notify_source: Callable[[], frozenset[str]] | None = None
        self.autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.is_postgres = engine.dialect.name == "postgresql"
        self._raw = RawConnections(engine)
        # a worker's threads claim and finish runs as shared multi-row statements (Postgres)
        self.claims: GroupCommit[tuple[str, str, float], Any] = GroupCommit(self._claim_batch)
        self.finishes: GroupCommit[dict[str, Any], Any] = GroupCommit(self._finish_batch)

    def _notify(self, status: RunStatus) -> bool:
        """The ``notify_pending`` flag of a run ending in ``status``."""
        return self.notify_source is not None and status.value in self.notify_source()

    def close(self) -> None:
        """Close every connection: the hot path's own (held outside the pool) and the pool."""
        self._raw.close()
        self.engine.dispose()

    # ------------------------------------------------------------------ helpers
    def _insert(self, table: t.Table) -> Any:
        return (postgresql.insert if self.is_postgres else sqlite.insert)(table)

    def begin(self) -> Any:
        return self.engine.begin()

    # ------------------------------------------------------------------ task definitions
    def upsert_task_definitions(self, defs: Sequence[dict[str, Any]]) -> None:
        if not defs:
            return
        # every row names its shared queue or None: a task that left one must forget it
        defs = [{**d, "concurrency_queue": d.get("concurrency_queue")} for d in defs]
        stmt = self._insert(t.task_definitions).values(list(defs))
        cols = {c: stmt.excluded[c] for c in defs[0] if c != "id"}
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=cols))

    def upsert_queue_definitions(self, defs: Sequence[dict[str, Any]]) -> None:
        """Shared queues declared in this worker's code (name, concurrency_limit)."""
        if not defs:
            return
        stmt = self._insert(t.queue_definitions).values(list(defs))
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"concurrency_limit": stmt.excluded.concurrency_limit,
                      "total_concurrency_limit": stmt.excluded.total_concurrency_limit,
                      "updated_at": stmt.excluded.updated_at}))

    def queue_definitions(self) -> list[Row]:
        with self.autocommit.connect() as conn:
            return list(conn.execute(select(t.queue_definitions)).mappings())

    def task_definition(self, task_id: str) -> Row | None:
        with self.autocommit.connect() as conn:
            return (
                conn.execute(select(t.task_definitions).where(t.task_definitions.c.id == task_id))
                .mappings()
                .first()
            )

    def task_definitions(self) -> list[Row]:
        with self.autocommit.connect() as conn:
            return list(conn.execute(select(t.task_definitions)).mappings())

    def release_pending_version(self, definitions: Sequence[dict[str, Any]]) -> int:
        """Runs waiting for a worker that knows their task become QUEUED (the timer
        publishes them; DELAYED if their delay is still ahead), taking the task's queue,
        machine, retry policy and limits — which the trigger could not know — unless the
        trigger set them itself. A run also waiting for its trigger's queue to be declared
        stays: :meth:`release_pending_queue` releases it."""
        n = 0
        r = t.runs.c
        with self.engine.begin() as conn:
            for d in definitions:
                n += conn.execute(
                    update(t.runs)
                    .where(r.task_identifier == d["id"], r.status == RunStatus.PENDING_VERSION,
                           r.pending_queue.is_(None))
                    .values(**_released(d, utcnow()))
                ).rowcount
        return n

    def pending_queue_names(self) -> set[str]:
        """The queue names runs wait for (runtime/pending_queues.py): a partial index."""
        r = t.runs.c
        with self.autocommit.connect() as conn:
            return {str(name) for (name,) in conn.execute(
                select(r.pending_queue).where(r.pending_queue.is_not(None),
                                              r.status == RunStatus.PENDING_VERSION)
                .distinct())}

    def runs_pending_queue(self, names: Sequence[str], limit: int) -> list[Row]:
        """Runs waiting for one of the queue ``names`` whose task a worker has registered,
        oldest first (the others are not read: a backlog on a typo never hides them)."""
        r = t.runs.c
        with self.autocommit.connect() as conn:
            return list(conn.execute(
                select(r.id, r.task_identifier, r.pending_queue)
                .where(r.pending_queue.in_(names), r.status == RunStatus.PENDING_VERSION,
                       r.task_identifier.in_(select(t.task_definitions.c.id)))
                .order_by(r.id).limit(limit)).mappings())

    def release_pending_queue(self, run_ids: Sequence[str], name: str,
                              definition: dict[str, Any],
                              shared: tuple[str, int | None] | None) -> list[Row]:
        """Release runs of one task whose trigger's queue ``name`` has been declared, as its
        worker does at boot (:meth:`release_pending_version`), and into that queue: the
        ``shared`` queue's slots (its name and limit, from ``shared_queue_named``), or else
        the RabbitMQ queue of that name. One statement; returns the runs released (id,
        status, queue): those canceled meanwhile are not."""
        r = t.runs.c
        values = _released(definition, utcnow())
        if shared is not None:
            values.update(
                queue=func.coalesce(r.queue, definition["queue"]),
                concurrency_queue=shared[0],
                concurrency_limit=shared[1],
                concurrency_key=(func.coalesce(r.concurrency_key, "")
                                 if shared[1] is not None else r.concurrency_key),
            )
        else:
            values["queue"] = name
        with self.engine.begin() as conn:
            return list(conn.execute(
                update(t.runs)
                .where(r.id.in_(run_ids), r.status == RunStatus.PENDING_VERSION,
                       r.pending_queue == name)
                .values(pending_queue=None, **values)
                .returning(r.id, r.status, r.queue)
            ).mappings())

    # ------------------------------------------------------------------ trigger
    def insert_runs(self, rows: list[dict[str, Any]], conn: Connection | None = None) -> set[str]:
        """Insert runs; returns the ids inserted. Rows whose idempotency key is taken are
        skipped by the unique index (the caller looks them up). Postgres: one statement
        whatever the count. SQLite (or rows of mixed shapes): one executemany from a
        statement compiled once."""
        if not rows:
            return set()
        if self.is_postgres and conn is None:
            # the trigger hot path, one run or many: runs and tags in one autocommit
            # statement (a data-modifying CTE writes the tags only of rows inserted)
            cols = tuple(rows[0])
            if all(tuple(r) == cols for r in rows):
                return self._insert_many_pg(cols, rows)
        base = (
            self._insert(t.runs)
            .on_conflict_do_nothing(
                index_elements=["task_identifier", "idempotency_key"],
                index_where=t.runs.c.idempotency_key.isnot(None),
            )
            .returning(t.runs.c.id)
        )
        tag_rows = [{"tag": tag, "run_id": r["id"]} for r in rows for tag in (r.get("tags") or [])]
        if conn is not None:
            return self._insert_runs_on(conn, base, rows, tag_rows)
        if not tag_rows:
            with self.autocommit.connect() as c:
                return {r[0] for r in c.execute(base, rows)}
        with self.engine.begin() as c:
            return self._insert_runs_on(c, base, rows, tag_rows)

    def _insert_many_pg(self, cols: tuple[str, ...], rows: list[dict[str, Any]]) -> set[str]:
        """Several runs and their tags in one autocommit statement, the rows as ONE jsonb
        parameter (``jsonb_populate_recordset``): binding ~40 parameters per row through
        SQLAlchemy and psycopg cost more client CPU than the insert itself (the HTTP API's
        group-committed triggers and ``batch_trigger`` both come here)."""
        sql = _INSERT_MANY_SQL.get(cols)
        if sql is None:
            sql = _INSERT_MANY_SQL[cols] = _insert_many_sql(cols)
        return {r["id"] for r in self._raw.fetch_all(sql, {"rows": dumps(rows)})}

    def _insert_runs_on(
        self, conn: Connection, stmt: Any, rows: list[dict[str, Any]], tag_rows: list[dict]
    ) -> set[str]:
        inserted = {r[0] for r in conn.execute(stmt, rows)}
        tag_rows = [r for r in tag_rows if r["run_id"] in inserted]
        if tag_rows:
            conn.execute(insert(t.run_tags), tag_rows)
        return inserted

    def add_tags(self, run_id: str, tags: list[str], added: list[str]) -> None:
        """A run's tags are now ``tags``, ``added`` being new: the row and the tag index."""
        with self.engine.begin() as conn:
            conn.execute(update(t.runs).where(t.runs.c.id == run_id).values(tags=tags))
            conn.execute(insert(t.run_tags), [{"tag": tag, "run_id": run_id} for tag in added])

    def find_by_idempotency_keys(self, task_id: str, keys: Sequence[str]) -> dict[str, Row]:
        with self.autocommit.connect() as conn:
            rows = conn.execute(
                select(t.runs).where(
                    t.runs.c.task_identifier == task_id, t.runs.c.idempotency_key.in_(keys)
                )
            ).mappings()
            return {r["idempotency_key"]: r for r in rows}

    def release_idempotency_key(self, run_id: str, key: str) -> bool:
        """Free a key whose TTL passed so a new run can take it (conditional on the key)."""
        with self.autocommit.connect() as conn:
            return (
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == run_id, t.runs.c.idempotency_key == key)
                    .values(idempotency_key=None)
                ).rowcount
                == 1
            )

    def reset_idempotency_key(self, task_id: str, key: str) -> int:
        with self.autocommit.connect() as conn:
            return conn.execute(
                update(t.runs)
                .where(t.runs.c.task_identifier == task_id, t.runs.c.idempotency_key == key)
                .values(idempotency_key=None)
            ).rowcount

    def mark_published(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self.autocommit.connect() as conn:
            conn.execute(
                update(t.runs)
                # attempt_count = 0: a worker may already have claimed the run, failed it and
                # queued a retry (unpublished) before this mark lands; never mark that one
                .where(
                    t.runs.c.id.in_(ids),
                    t.runs.c.published_at.is_(None),
                    t.runs.c.attempt_count == 0,
                )
                .values(published_at=utcnow())
            )

    # ------------------------------------------------------------------ worker: claim
    def claim(self, run_id: str, owner: str, lease_seconds: float) -> Any:
        """Start an attempt: QUEUED → EXECUTING in one conditional UPDATE. ``None`` when
        the run is not claimable (already running, cancelled, not yet due, duplicate)."""
        if self.is_postgres:
            return self.claims.submit((run_id, owner, lease_seconds))
        now = utcnow()
        params = {
            "rid": run_id,
            "owner": owner,
            "now": now,
            "lease": now + timedelta(seconds=lease_seconds),
        }
        return self._hot(lambda conn: conn.execute(_CLAIM, params).mappings().first())

    def _claim_batch(self, items: list[tuple[str, str, float]]) -> list[Any]:
        """Claims of several threads in one UPDATE … WHERE id = ANY(…). A run delivered
        twice into the same batch is claimed once: the second message gets None."""
        now = utcnow()
        out: list[Any] = [None] * len(items)
        groups: dict[tuple[str, float], list[int]] = {}
        for i, (_rid, owner, lease) in enumerate(items):
            groups.setdefault((owner, lease), []).append(i)
        for (owner, lease), index in groups.items():
            params = {
                "rids": [items[i][0] for i in index],
                "owner": owner,
                "now": now,
                "lease": now + timedelta(seconds=lease),
            }
            claimed = {row["id"]: row for row in self._raw.fetch_all(_CLAIM_MANY_PG, params)}
            for i in index:
                out[i] = claimed.pop(items[i][0], None)
        return out

    def _hot(self, op: Any) -> Any:
        """Run a hot-path statement in autocommit, retrying once on a dropped connection
        (the pool does not ping before every checkout: that would double the round trips)."""
        try:
            with self.autocommit.connect() as conn:
                return op(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            with self.autocommit.connect() as conn:
                return op(conn)

    def park_pending_version(self, run: Row, owner: str) -> bool:
        """Undo a claim whose task this worker does not have: back to PENDING_VERSION with
        the attempt uncharged (a fresh claim added one; a resumed one keeps its attempt)."""
        fresh = run["attempt_started_at"] == run["executing_since"]
        r = t.runs.c
        with self.autocommit.connect() as conn:
            return (
                conn.execute(
                    update(t.runs)
                    .where(
                        r.id == run["id"],
                        r.status == RunStatus.EXECUTING,
                        r.lease_owner == owner,
                        r.attempt_count == run["attempt_count"],
                    )
                    .values(
                        status=RunStatus.PENDING_VERSION,
                        attempt_count=r.attempt_count - (1 if fresh else 0),
                        suspended=not fresh,
                        lease_owner=None,
                        lease_expires_at=None,
                        published_at=None,
                        updated_at=utcnow(),
                    )
                ).rowcount
                == 1
            )

    def renew_leases(self, owner: str, run_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend the leases this worker holds; returns the ids it still owns (a missing id
        was cancelled or taken away)."""
        if not run_ids:
            return set()
        now = utcnow()
        with self.autocommit.connect() as conn:
            rows = conn.execute(
                update(t.runs)
                .where(
                    t.runs.c.id.in_(run_ids),
                    t.runs.c.status == RunStatus.EXECUTING,
                    t.runs.c.lease_owner == owner,
                )
                .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
                .returning(t.runs.c.id)
            )
            return {row[0] for row in rows}

    def release_runs(self, owner: str, run_ids: Sequence[str]) -> int:
        """Hand unfinished attempts back on shutdown without charging an attempt."""
        if not run_ids:
            return 0
        now = utcnow()
        r = t.runs.c
        with self.autocommit.connect() as conn:
            return conn.execute(
                update(t.runs)
                .where(r.id.in_(run_ids), r.status == RunStatus.EXECUTING, r.lease_owner == owner)
                .values(
                    status=RunStatus.QUEUED,
                    suspended=True,
                    lease_owner=None,
                    lease_expires_at=None,
                    published_at=None,
                    available_at=now,
                    updated_at=now,
                )
            ).rowcount

    # ------------------------------------------------------------------ worker: finish
    def finish_attempt(
        self,
        run: Row,
        owner: str,
        *,
        status: RunStatus,
        execution_ms: int,
        output: Any = None,
        error: Any = None,
        metadata: Any = None,
        logs: Sequence[dict[str, Any]] = (),
        retry_at: datetime | None = None,
        attempt_status: str | None = None,
        waiting_on: str | None = None,
    ) -> bool:
        """End (or suspend) the executing attempt in one transaction: the run row, the
        attempt record, buffered logs and metadata together. False if the run was no
        longer ours (cancelled, or the lease lapsed and another worker took it)."""
        now = utcnow()
        attempt = run["attempt_count"]
        attempt_row = {
            "number": attempt,
            "status": attempt_status or status.value,
            "worker": owner,
            "started_at": run["attempt_started_at"] or run["executing_since"],
            "finished_at": now,
            "execution_ms": run["attempt_execution_ms"] + execution_ms,
            "error": error if status != RunStatus.COMPLETED else None,
        }
        # the hot path on Postgres (no logs, no parent to wake): one statement, or a share
        # of one; False from it means the run is no longer ours — the general path below
        # then closes a canceled attempt
        if self.is_postgres and not logs and not run["resume_parent_on_completion"]:
            if status.is_final and self.finishes.submit(
                {
                    "rid": run["id"],
                    "owner": owner,
                    "attempt": attempt,
                    "ms": execution_ms,
                    "metadata": metadata,
                    "status": status.value,
                    "output": output,
                    "error": error,
                    "release": status in KEY_RELEASING_STATUSES,
                    "notify": self._notify(status),
                }
            ):
                return True
            if status == RunStatus.QUEUED and self._retry_in_one_statement(
                run, owner, now, execution_ms, metadata, retry_at, attempt_row
            ):
                return True
        r = t.runs.c
        values: dict[str, Any] = {
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "execution_ms": r.execution_ms + execution_ms,
            "attempt_execution_ms": r.attempt_execution_ms + execution_ms,
        }
        if metadata is not None:
            values["metadata"] = metadata
        if status == RunStatus.WAITING:
            values.update(status=RunStatus.WAITING, waiting_on=waiting_on, suspended=True)
        elif status == RunStatus.QUEUED:  # retry after backoff
            values.update(
                status=RunStatus.QUEUED,
                available_at=retry_at,
                published_at=None,
                error=error,
                waiting_on=None,
            )
        else:
            values.update(
                status=status, finished_at=now, output=output, error=error, waiting_on=None,
                notify_pending=self._notify(status),
            )
            if status in KEY_RELEASING_STATUSES:
                values.update(idempotency_key=None)
        where = and_(
            r.id == run["id"],
            r.status == RunStatus.EXECUTING,
            r.lease_owner == owner,
            r.attempt_count == attempt,
        )
        with self.engine.begin() as conn:
            done = conn.execute(update(t.runs).where(where).values(values)).rowcount == 1
            if logs:
                conn.execute(insert(t.run_logs), list(logs))
            if not done:
                # canceled while executing: the row is final already; close our attempt
                done = (
                    conn.execute(
                        update(t.runs)
                        .where(
                            r.id == run["id"],
                            r.status == RunStatus.CANCELED,
                            r.lease_owner == owner,
                            r.attempt_count == attempt,
                        )
                        .values(
                            lease_owner=None,
                            lease_expires_at=None,
                            updated_at=now,
                            execution_ms=r.execution_ms + execution_ms,
                        )
                    ).rowcount
                    == 1
                )
                if done:
                    status = RunStatus.CANCELED
                    attempt_status = "CANCELED"
                else:
                    return False
            if status != RunStatus.WAITING:
                conn.execute(insert(t.run_attempts).values(run_id=run["id"], **attempt_row))
            elif waiting_on is not None:
                # the waitpoint may have completed before we got here: then don't sleep
                self._resume_if_completed(conn, run["id"], waiting_on, now)
            if status.is_final and run["resume_parent_on_completion"]:
                self._on_child_final(conn, run, now)
        return True

    def _retry_in_one_statement(
        self,
        run: Row,
        owner: str,
        now: datetime,
        execution_ms: int,
        metadata: Any,
        retry_at: datetime | None,
        attempt_row: dict[str, Any],
    ) -> bool:
        """A failed attempt with a retry ahead: the run back to QUEUED (due at ``retry_at``)
        and its attempt record, one prepared statement (a data-modifying CTE)."""

        def js(value: Any) -> str | None:
            return None if value is None else dumps(value)

        params = {
            "rid": run["id"],
            "owner": owner,
            "attempt": run["attempt_count"],
            "now": now,
            "ms": execution_ms,
            "metadata": js(metadata),
            "retry_at": retry_at,
            "astatus": attempt_row["status"],
            "astarted": attempt_row["started_at"],
            "attempt_ms": attempt_row["execution_ms"],
            "aerror": js(attempt_row["error"]),
        }
        return self._raw.fetch_one(_RETRY_PG, params) is not None

    def _finish_batch(self, items: list[dict[str, Any]]) -> list[Any]:
        """Final finishes of several threads in one UPDATE … FROM jsonb_to_recordset(…):
        the rows travel as one JSON parameter. True for each run that was still ours."""
        import psycopg

        params = {"now": utcnow(), "rows": dumps(items), "rids": [i["rid"] for i in items]}
        try:
            done = self._raw.fetch_all(_FINISH_MANY_PG, params)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            # one run's data refused (say a NUL in its output): finish the others alone,
            # so only that run's attempt fails, as it would have without the batch
            if len(items) == 1:
                return [exc]
            return [self._finish_batch([item])[0] for item in items]
        ended = {row["id"] for row in done}
        return [item["rid"] in ended for item in items]

    def _resume_if_completed(
        self, conn: Connection, run_id: str, waitpoint_id: str, now: datetime
    ) -> None:
        state = conn.execute(
            select(t.waitpoints.c.status).where(t.waitpoints.c.id == waitpoint_id)
        ).scalar()
        if state is not None and state != "PENDING":
            self._requeue_waiting(conn, [waitpoint_id], now)

    def _requeue_waiting(
        self, conn: Connection, waitpoint_ids: Sequence[str], now: datetime
    ) -> int:
        r = t.runs.c
        return conn.execute(
            update(t.runs)
            .where(r.status == RunStatus.WAITING, r.waiting_on.in_(waitpoint_ids))
            .values(
                status=RunStatus.QUEUED,
                available_at=now,
                published_at=None,
                updated_at=now,
                waiting_on=None,
            )
        ).rowcount

    def _on_child_final(self, conn: Connection, child: Row, now: datetime) -> None:
        """A child that a parent waits for ended: count it on the parent's waitpoint."""
        wp_id = child["parent_waitpoint_id"]
        if wp_id is None:
            return
        w = t.waitpoints.c
        row = conn.execute(
            update(t.waitpoints)
            .where(w.id == wp_id, w.status == "PENDING")
            .values(done=w.done + 1)
            .returning(w.done, w.total)
        ).first()
        if row is not None and row[0] >= (row[1] or 1):
            conn.execute(
                update(t.waitpoints)
                .where(w.id == wp_id, w.status == "PENDING")
                .values(status="COMPLETED", completed_at=now)
            )
            self._requeue_waiting(conn, [wp_id], now)

    def add_logs(self, logs: Sequence[dict[str, Any]]) -> None:
        self.write_buffers(logs, {})

    def write_buffers(
        self,
        logs: Sequence[dict[str, Any]],
        metadata: dict[str, Any],
        sent_ops: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        """The periodic flush of every running attempt in this process: all buffered log
        lines, all changed metadata documents and the changes sent to other runs' metadata
        (metadata_ops) in one transaction, each as one executemany (not a statement per
        run). Metadata is written only while the run is executing: a late flush must never
        overwrite what the attempt's final write stored."""
        if not logs and not metadata and not sent_ops:
            return
        with self.engine.begin() as conn:
            if logs:
                conn.execute(insert(t.run_logs), list(logs))
            if metadata:
                conn.execute(_SET_METADATA, [{"rid": k, "meta": v} for k, v in metadata.items()])
            if sent_ops:
                metadata_ops.queue(conn, sent_ops)

    # ------------------------------------------------------------------ reads
    def get_run(self, run_id: str) -> Row | None:
        with self.autocommit.connect() as conn:
            return conn.execute(select(t.runs).where(t.runs.c.id == run_id)).mappings().first()

    def get_runs(self, run_ids: Sequence[str]) -> dict[str, Row]:
        if not run_ids:
            return {}
        with self.autocommit.connect() as conn:
            rows = conn.execute(select(t.runs).where(t.runs.c.id.in_(run_ids))).mappings()
            return {r["id"]: r for r in rows}

    def attempts(self, run_id: str, run: Row | None = None) -> list[Any]:
        """The run's attempts in order. The attempt that ended a run may exist only on the
        run row (the hot-path finish writes no attempt record for it): it is added here."""
        with self.autocommit.connect() as conn:
            rows: list[Any] = list(
                conn.execute(
                    select(t.run_attempts)
                    .where(t.run_attempts.c.run_id == run_id)
                    .order_by(t.run_attempts.c.number)
                ).mappings()
            )
            if run is None:
                run = conn.execute(
                    select(*(t.runs.c[name] for name in _LAST_ATTEMPT_COLUMNS)).where(
                        t.runs.c.id == run_id
                    )
                ).mappings().first()
        last = _last_attempt_from_run(run, rows)
        return rows if last is None else [*rows, last]

    def logs(self, run_id: str, level: str | None = None, limit: int = 1000) -> list[Row]:
        q = select(t.run_logs).where(t.run_logs.c.run_id == run_id)
        if level:
            q = q.where(t.run_logs.c.level == level)
        with self.autocommit.connect() as conn:
            return list(conn.execute(q.order_by(t.run_logs.c.id).limit(limit)).mappings())

    def children(self, run_id: str) -> list[Row]:
        with self.autocommit.connect() as conn:
            return list(
                conn.execute(
                    select(t.runs).where(t.runs.c.parent_id == run_id).order_by(t.runs.c.id)
                ).mappings()
            )

    def list_runs(
        self,
        *,
        statuses: Sequence[str] | None = None,
        tasks: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        batch_id: str | None = None,
        schedule_id: str | None = None,
        idempotency_key: str | None = None,
        queues: Sequence[str] | None = None,
        cursor: str | None = None,
        limit: int = 50,
        columns: Sequence[Any] | None = None,
    ) -> list[Row]:
        """Newest first, keyset-paginated by id (ids sort by creation time). ``queues``:
        the concurrency queues whose slots the runs take (a task's id, a shared queue)."""
        r = t.runs.c
        q = select(*(columns or t.runs.c))
        if queues:
            # runs from before shared queues have none recorded: their task's own
            q = q.where(or_(r.concurrency_queue.in_(list(queues)),
                            and_(r.concurrency_queue.is_(None),
                                 r.task_identifier.in_(list(queues)))))
        if statuses:
            q = q.where(r.status.in_(list(statuses)))
        if tasks:
            q = q.where(r.task_identifier.in_(list(tasks)))
        if tags:
            q = q.where(r.id.in_(select(t.run_tags.c.run_id).where(t.run_tags.c.tag.in_(tags))))
        # run ids begin with their creation time: an id range lets the primary key serve
        # time windows too (the created_at test keeps the exact boundary)
        if created_from:
            q = q.where(
                r.created_at >= created_from, r.id >= "run_" + timestamp_prefix(_ms(created_from))
            )
        if created_to:
            q = q.where(
                r.created_at < created_to, r.id < "run_" + timestamp_prefix(_ms(created_to) + 1)
            )
        if batch_id:
            q = q.where(r.batch_id == batch_id)
        if schedule_id:
            q = q.where(r.schedule_id == schedule_id)
        if idempotency_key:
            q = q.where(
                or_(r.idempotency_key == idempotency_key, r.idempotency_key_user == idempotency_key)
            )
        if cursor:
            q = q.where(r.id < cursor)
        q = q.order_by(r.id.desc()).limit(limit)
        with self.autocommit.connect() as conn:
            return list(conn.execute(q).mappings())

    # ------------------------------------------------------------------ cancel
    def cancel(self, run_id: str, reason: str = "Canceled") -> list[str]:
        """Cancel a run and its unfinished descendants; returns the ids canceled. An
        executing attempt notices at its next heartbeat, log or metadata call."""
        now = utcnow()
        canceled: list[str] = []
        frontier = [run_id]
        error = {"type": "CANCELED", "message": reason}
        with self.engine.begin() as conn:
            while frontier:
                ids = list(
                    conn.execute(
                        update(t.runs)
                        .where(
                            t.runs.c.id.in_(frontier),
                            t.runs.c.status.in_(list(CANCELABLE_STATUSES)),
                        )
                        .values(
                            status=RunStatus.CANCELED,
                            finished_at=now,
                            updated_at=now,
                            error=error,
                            # an executing attempt runs on_complete itself when it stops
                            on_complete_pending=t.runs.c.status != RunStatus.EXECUTING,
                            notify_pending=self._notify(RunStatus.CANCELED),
                        )
                        .returning(t.runs.c.id)
                    ).scalars()
                )
                canceled += ids
                if ids:
                    conn.execute(
                        update(t.waitpoints)
                        .where(
                            t.waitpoints.c.run_id.in_(ids),
                            t.waitpoints.c.status == "PENDING",
                            t.waitpoints.c.kind != "MANUAL",
                        )
                        .values(status="CANCELED", completed_at=now)
                    )
                frontier = (
                    list(
                        conn.execute(
                            select(t.runs.c.id).where(
                                t.runs.c.parent_id.in_(ids),
                                t.runs.c.status.in_(list(CANCELABLE_STATUSES)),
                            )
                        ).scalars()
                    )
                    if ids
                    else []
                )
            # a canceled child that a parent waits for counts as final for the parent
            for child in (
                conn.execute(
                    select(t.runs).where(
                        t.runs.c.id.in_(canceled), t.runs.c.resume_parent_on_completion.is_(True)
                    )
                )
                .mappings()
                .all()
            ):
                if child["parent_id"] not in canceled:
                    self._on_child_final(conn, child, now)
        return canceled

    def reschedule(self, run_id: str, delay_until: datetime) -> bool:
        with self.autocommit.connect() as conn:
            return (
                conn.execute(
                    update(t.runs)
                    .where(t.runs.c.id == run_id, t.runs.c.status == RunStatus.DELAYED)
                    .values(available_at=delay_until, delay_until=delay_until, updated_at=utcnow())
                ).rowcount
                == 1
            )

    # ------------------------------------------------------------------ timer loop
    def timer_work(self) -> set[str]:
        """Which timer steps may have work now, in one statement of indexed EXISTS probes
        (each on the partial index its step scans). A superset: a step named here may still
        find nothing, but a step not named has nothing to do. Idle, a tick is this one
        statement instead of eight (three of them transactions)."""
        with self.autocommit.connect() as conn:
            row = conn.execute(_TIMER_PROBE, {"now": utcnow()}).mappings().one()
        return {name for name, due in row.items() if due}

    def promote_delayed(self, limit: int) -> int:
        now = utcnow()
        r = t.runs.c
        due = select(r.id).where(r.status == RunStatus.DELAYED, r.available_at <= now).limit(limit)
        with self.autocommit.connect() as conn:
            return conn.execute(
                update(t.runs)
                .where(r.id.in_(due.scalar_subquery()), r.status == RunStatus.DELAYED)
                .values(status=RunStatus.QUEUED, published_at=None, updated_at=now)
            ).rowcount

    def publish_due(self, limit: int, grace_seconds: float, publish: Any) -> int:
        """Publish QUEUED runs that are due and have no confirmed message yet. The rows stay
        locked (SKIP LOCKED) while we publish, so timer loops never publish the same run."""
        now = utcnow()
        r = t.runs.c
        q = (
            select(r.id, r.queue)
            .where(
                r.status == RunStatus.QUEUED,
                r.published_at.is_(None),
                or_(r.available_at.is_(None), r.available_at <= now),
                # a fresh trigger publishes its own message: give it a moment first
                or_(r.created_at <= now - timedelta(seconds=grace_seconds), r.attempt_count > 0),
            )
            .order_by(r.available_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(q).all()
            if not rows:
                return 0
            sent = publish([(row[0], row[1]) for row in rows])
            if sent:
                conn.execute(update(t.runs).where(r.id.in_(sent)).values(published_at=now))
            return len(sent)

    def unpublish_stale(self, stale_seconds: float, limit: int) -> int:
        """A published run nobody claimed for long (message lost) gets published again."""
        bound = utcnow() - timedelta(seconds=stale_seconds)
        r = t.runs.c
        stale = (
            select(r.id)
            .where(
                r.status == RunStatus.QUEUED,
                # a run is published after it is created and ids sort by creation time: the
                # id bound keeps this on ix_runs_status_id's old end instead of visiting every
                # queued run (a backlog of a million would be read on every tick)
                r.id < "run_" + timestamp_prefix(_ms(bound)),
                r.published_at < bound,
                # a run waiting for a slot has no message to lose: the wake step publishes
                # it from this table (republishing it would only make it wait again)
                ~r.waiting_for_slot,
            )
            .limit(limit)
        )
        with self.autocommit.connect() as conn:
            return conn.execute(
                update(t.runs)
                .where(r.id.in_(stale.scalar_subquery()), r.status == RunStatus.QUEUED)
                .values(published_at=None)
            ).rowcount

    def expire_ttl(self, limit: int) -> list[str]:
        now = utcnow()
        r = t.runs.c
        pending = [RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.PENDING_VERSION]
        due = (
            select(r.id)
            .where(r.expires_at <= now, r.status.in_(pending), r.attempt_count == 0)
            .limit(limit)
        )
        with self.autocommit.connect() as conn:
            return list(
                conn.execute(
                    update(t.runs)
                    .where(r.id.in_(due.scalar_subquery()), r.status.in_(pending))
                    .values(
                        status=RunStatus.EXPIRED,
                        finished_at=now,
                        updated_at=now,
                        idempotency_key=None,
                        on_complete_pending=True,
                        notify_pending=self._notify(RunStatus.EXPIRED),
                        error={"type": "EXPIRED", "message": "TTL passed before the run started"},
                    )
                    .returning(r.id)
                ).scalars()
            )

    def lapsed_leases(self, limit: int) -> list[Row]:
        now = utcnow()
        r = t.runs.c
        with self.autocommit.connect() as conn:
            return list(
                conn.execute(
                    select(t.runs)
                    .where(r.status == RunStatus.EXECUTING, r.lease_expires_at < now)
                    .limit(limit)
                ).mappings()
            )

    def crash_attempt(self, run: Row, *, final: bool, retry_at: datetime) -> bool:
        """End an attempt whose worker died: requeue it, or CRASHED with no attempts left."""
        now = utcnow()
        r = t.runs.c
        error = {
            "type": "CRASHED",
            "message": f"worker {run['lease_owner']} stopped heartbeating (lease lapsed)",
        }
        values: dict[str, Any] = {
            "updated_at": now,
            "lease_owner": None,
            "lease_expires_at": None,
            "error": error,
        }
        if final:
            values.update(
                status=RunStatus.CRASHED,
                finished_at=now,
                idempotency_key=None,
                on_complete_pending=True,
                notify_pending=self._notify(RunStatus.CRASHED),
            )
        else:
            values.update(status=RunStatus.QUEUED, available_at=retry_at, published_at=None)
        with self.engine.begin() as conn:
            ok = (
                conn.execute(
                    update(t.runs)
                    .where(
                        r.id == run["id"],
                        r.status == RunStatus.EXECUTING,
                        r.lease_owner == run["lease_owner"],
                        r.attempt_count == run["attempt_count"],
                        r.lease_expires_at < now,
                    )
                    .values(values)
                ).rowcount
                == 1
            )
            if ok:
                conn.execute(
                    insert(t.run_attempts).values(
                        run_id=run["id"],
                        number=run["attempt_count"],
                        status="CRASHED",
                        worker=run["lease_owner"],
                        started_at=run["attempt_started_at"] or run["executing_since"],
                        finished_at=now,
                        execution_ms=None,
                        error=error,
                    )
                )
                if final and run["resume_parent_on_completion"]:
                    self._on_child_final(conn, run, now)
        return ok

    def publish_pending_hooks(self, limit: int, publish: Any) -> int:
        """Runs that became final outside a worker (canceled while queued or waiting,
        expired, crashed) still owe their task's on_complete hook: send each to a worker of
        its queue. At most once: the flag is cleared with the publish."""
        r = t.runs.c
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(r.id, r.queue)
                .where(r.on_complete_pending.is_(True), r.queue.is_not(None))
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            sent = publish([(row[0], row[1]) for row in rows])
            if sent:
                conn.execute(update(t.runs).where(r.id.in_(sent)).values(on_complete_pending=False))
            return len(sent)

    # ------------------------------------------------------------------ waitpoints
    def create_waitpoint(self, row: dict[str, Any], conn: Connection | None = None) -> None:
        if conn is not None:
            conn.execute(insert(t.waitpoints).values(**row))
            return
        with self.engine.begin() as c:
            c.execute(insert(t.waitpoints).values(**row))

    def create_token(self, row: dict[str, Any]) -> tuple[Row, bool]:
        """Insert a MANUAL waitpoint; an idempotency key returns the existing one."""
        key = row.get("idempotency_key")
        with self.engine.begin() as conn:
            if key is not None:
                existing = (
                    conn.execute(select(t.waitpoints).where(t.waitpoints.c.idempotency_key == key))
                    .mappings()
                    .first()
                )
                if existing is not None:
                    exp = existing["idempotency_key_expires_at"]
                    if exp is None or exp > utcnow():
                        return existing, True
                    conn.execute(
                        update(t.waitpoints)
                        .where(t.waitpoints.c.id == existing["id"])
                        .values(idempotency_key=None)
                    )
            stmt = self._insert(t.waitpoints).values(**row).on_conflict_do_nothing()
            conn.execute(stmt)
            got = (
                conn.execute(select(t.waitpoints).where(t.waitpoints.c.id == row["id"]))
                .mappings()
                .first()
            )
            if got is None and key is not None:  # lost a race on the key
                got = (
                    conn.execute(select(t.waitpoints).where(t.waitpoints.c.idempotency_key == key))
                    .mappings()
                    .first()
                )
                assert got is not None
                return got, True
            assert got is not None
            return got, False

    def get_waitpoint(self, waitpoint_id: str) -> Row | None:
        with self.autocommit.connect() as conn:
            return (
                conn.execute(select(t.waitpoints).where(t.waitpoints.c.id == waitpoint_id))
                .mappings()
                .first()
            )

    def list_waitpoints(
        self,
        run_id: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[Row]:
        q = select(t.waitpoints)
        if run_id:
            q = q.where(t.waitpoints.c.run_id == run_id)
        if kind:
            q = q.where(t.waitpoints.c.kind == kind)
        if status:
            q = q.where(t.waitpoints.c.status == status)
        with self.autocommit.connect() as conn:
            return list(conn.execute(q.order_by(t.waitpoints.c.id.desc()).limit(limit)).mappings())

    def attach_waitpoint(self, waitpoint_id: str, run_id: str) -> None:
        with self.autocommit.connect() as conn:
            conn.execute(
                update(t.waitpoints).where(t.waitpoints.c.id == waitpoint_id).values(run_id=run_id)
            )

    def complete_waitpoint(
        self, waitpoint_id: str, output: Any, *, status: str = "COMPLETED", is_error: bool = False
    ) -> tuple[bool, Row | None]:
        """Complete a PENDING waitpoint and requeue the run waiting on it. Returns
        (changed, row); completing twice changes nothing."""
        now = utcnow()
        w = t.waitpoints.c
        with self.engine.begin() as conn:
            changed = (
                conn.execute(
                    update(t.waitpoints)
                    .where(w.id == waitpoint_id, w.status == "PENDING")
                    .values(
                        status=status, output=output, output_is_error=is_error, completed_at=now
                    )
                ).rowcount
                == 1
            )
            if changed:
                self._requeue_waiting(conn, [waitpoint_id], now)
            row = conn.execute(select(t.waitpoints).where(w.id == waitpoint_id)).mappings().first()
        return changed, row

    def fire_due_waitpoints(self, limit: int) -> int:
        """DATETIME waitpoints that are due complete; MANUAL tokens past their timeout time
        out. Either way the waiting run is requeued, in the same transaction."""
        now = utcnow()
        w = t.waitpoints.c
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(w.id, w.kind)
                .where(w.status == "PENDING", w.due_at <= now)
                .order_by(w.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            dt = [i for i, k in rows if k == "DATETIME"]
            tok = [i for i, k in rows if k != "DATETIME"]
            if dt:
                conn.execute(
                    update(t.waitpoints)
                    .where(w.id.in_(dt))
                    .values(status="COMPLETED", completed_at=now)
                )
            if tok:
                conn.execute(
                    update(t.waitpoints)
                    .where(w.id.in_(tok))
                    .values(
                        status="TIMED_OUT",
                        completed_at=now,
                        output_is_error=True,
                        output={"type": "WAITPOINT_TIMEOUT", "message": "token timed out"},
                    )
                )
            self._requeue_waiting(conn, [r[0] for r in rows], now)
            return len(rows)

    def resume_orphaned_waits(self, limit: int) -> int:
        """Safety net: a WAITING run whose waitpoint already completed is requeued."""
        now = utcnow()
        r, w = t.runs.c, t.waitpoints.c
        done = (
            select(r.waiting_on)
            .join(t.waitpoints, w.id == r.waiting_on)
            .where(r.status == RunStatus.WAITING, w.status != "PENDING")
            .limit(limit)
        )
        with self.engine.begin() as conn:
            ids = list(conn.execute(done).scalars())
            return self._requeue_waiting(conn, ids, now) if ids else 0

    # ------------------------------------------------------------------ replay records
    def steps(self, run_id: str) -> list[Row]:
        with self.autocommit.connect() as conn:
            return list(
                conn.execute(
                    select(t.run_steps)
                    .where(t.run_steps.c.run_id == run_id)
                    .order_by(t.run_steps.c.seq)
                ).mappings()
            )

    def record_step(self, row: dict[str, Any], conn: Connection | None = None) -> None:
        if conn is not None:
            conn.execute(insert(t.run_steps).values(**row))
            return
        with self.engine.begin() as c:
            c.execute(insert(t.run_steps).values(**row))

    # ------------------------------------------------------------------ workers
    def worker_seen(self, row: dict[str, Any]) -> None:
        stmt = self._insert(t.workers).values(**row)
        with self.autocommit.connect() as conn:
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["id"], set_={"last_seen_at": stmt.excluded.last_seen_at}
                )
            )

    def worker_gone(self, worker_id: str) -> None:
        with self.autocommit.connect() as conn:
            conn.execute(delete(t.workers).where(t.workers.c.id == worker_id))

    def workers_online(self, within_seconds: float) -> list[Row]:
        since = utcnow() - timedelta(seconds=within_seconds)
        with self.autocommit.connect() as conn:
            return list(
                conn.execute(select(t.workers).where(t.workers.c.last_seen_at >= since)).mappings()
            )


def _released(d: dict[str, Any], now: Any) -> dict[str, Any]:
    """The values a PENDING_VERSION run takes when a worker with its task ``d`` (a task
    definition) is up: QUEUED, or DELAYED while its trigger's delay is ahead."""
    r = t.runs.c
    # a run its trigger put in a shared queue keeps that queue and its limit
    chosen = and_(r.concurrency_queue.is_not(None), r.concurrency_queue != r.task_identifier)
    own_key = (func.coalesce(r.concurrency_key, "") if d.get("concurrency_limit")
               else r.concurrency_key)
    delayed = and_(r.delay_until.is_not(None), r.delay_until > now)
    return {
        "status": case((delayed, RunStatus.DELAYED.value), else_=RunStatus.QUEUED.value),
        "queue": func.coalesce(r.queue, d["queue"]),
        "machine": func.coalesce(r.machine, d["machine"]),
        "task_version": d["version"],
        "retry": d["retry"],
        "max_attempts": func.coalesce(r.max_attempts, d["retry"]["max_attempts"]),
        "max_duration": func.coalesce(r.max_duration, d["max_duration"]),
        "concurrency_limit": case((chosen, r.concurrency_limit),
                                  else_=d.get("concurrency_limit")),
        "concurrency_queue": case((chosen, r.concurrency_queue),
                                  else_=d.get("concurrency_queue") or d["id"]),
        "concurrency_key": case(
            (chosen & r.concurrency_limit.is_not(None), func.coalesce(r.concurrency_key, "")),
            (chosen, r.concurrency_key), else_=own_key),
        "updated_at": now,
        "available_at": case((delayed, r.delay_until), else_=now),
        "published_at": None,
    }


def create_child_wait(
    store: Store, waitpoint: dict[str, Any], step: dict[str, Any], children: list[dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """In one transaction: the waitpoint, the replay record and the child runs, so a crash
    can never leave children without the record that stops replay from triggering them
    again. Children whose idempotency key is taken resolve to the existing run. Returns
    (child ids in item order, ids of children inserted here — the ones to publish)."""
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(insert(t.waitpoints).values(**waitpoint))
        inserted = store.insert_runs(children, conn=conn)
        child_ids: list[str] = []
        done = 0
        for row in children:
            if row["id"] in inserted:
                child_ids.append(row["id"])
                continue
            existing = (
                conn.execute(
                    select(t.runs).where(
                        t.runs.c.task_identifier == row["task_identifier"],
                        t.runs.c.idempotency_key == row["idempotency_key"],
                    )
                )
                .mappings()
                .first()
            )
            if existing is None:
                raise RuntimeError("idempotent child vanished while triggering; retry")
            child_ids.append(existing["id"])
            if RunStatus(existing["status"]).is_final:
                done += 1
                continue
            attached = conn.execute(
                update(t.runs)
                .where(t.runs.c.id == existing["id"], t.runs.c.parent_waitpoint_id.is_(None))
                .values(parent_waitpoint_id=waitpoint["id"], resume_parent_on_completion=True)
            ).rowcount
            if not attached:
                from ..errors import WaitError

                raise WaitError(
                    f"run {existing['id']} (same idempotency key) is already awaited by "
                    "another run; give this child its own key"
                )
        if done:
            conn.execute(
                update(t.waitpoints).where(t.waitpoints.c.id == waitpoint["id"]).values(done=done)
            )
            if done >= (waitpoint.get("total") or 1):
                conn.execute(
                    update(t.waitpoints)
                    .where(t.waitpoints.c.id == waitpoint["id"])
                    .values(status="COMPLETED", completed_at=now)
                )
        conn.execute(insert(t.run_steps).values(**{**step, "child_ids": child_ids}))
    return child_ids, [i for i in child_ids if i in inserted]


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _claim_sql(limited: bool = False) -> str:
    """The claim. A run of a task with a concurrency limit, or of a task whose queue ops
    hold (runtime/store/queue_controls.py: paused, limit overridden), is not claimed here
    but by the ``limited`` form (runtime/store/slots.py), which also needs the queue not
    paused and a free slot: fewer runs of its queue (its task's, or the shared queue its
    task is in) and concurrency key EXECUTING than its
    limit (the override, else the run's own) — and, for a task with a
    ``total_concurrency_limit``, fewer than that over all its keys. That form also stamps
    the run with the limit it was claimed under, so a run of an unlimited task started
    under an override counts against it while it executes (ix_runs_slots holds only runs
    with a limit)."""
    cols = ", ".join(CLAIMED_COLUMNS)
    # the queue whose slots the run takes: its task's, or a shared one (NULL only on runs
    # from before shared queues, which are their task's)
    queue = "COALESCE(runs.concurrency_queue, runs.task_identifier)"
    gate = f"""AND concurrency_limit IS NULL AND NOT EXISTS (
    SELECT 1 FROM queue_controls AS c WHERE c.task_identifier = {queue})"""
    stamp = ""
    if limited:
        override = ("(SELECT c.concurrency_limit FROM queue_controls AS c"
                    f" WHERE c.task_identifier = {queue})")
        # the queue's total over all its keys: ops' override, else its code's now (a task's
        # definition, or a shared queue's declaration; CASE: counted only when it has one)
        total = ("COALESCE((SELECT c.total_concurrency_limit FROM queue_controls AS c"
                 f" WHERE c.task_identifier = {queue}),"
                 " (SELECT d.total_concurrency_limit FROM task_definitions AS d"
                 f" WHERE d.id = {queue}),"
                 " (SELECT q.total_concurrency_limit FROM queue_definitions AS q"
                 f" WHERE q.name = {queue}))")
        gate = f"""AND NOT EXISTS (
    SELECT 1 FROM queue_controls AS c WHERE c.task_identifier = {queue} AND c.paused)
  AND (
  SELECT count(*) FROM runs AS x
  WHERE x.concurrency_queue = {queue}
    AND x.concurrency_key = COALESCE(runs.concurrency_key, '')
    AND x.status = 'EXECUTING' AND x.concurrency_limit IS NOT NULL
  ) < COALESCE({override}, concurrency_limit, 2147483647)
  AND CASE WHEN {total} IS NULL THEN true ELSE (
    SELECT count(*) FROM runs AS y
    WHERE y.concurrency_queue = {queue}
      AND y.status = 'EXECUTING' AND y.concurrency_limit IS NOT NULL
    ) < {total} END"""
        stamp = f""", waiting_for_slot = false,
  concurrency_limit = COALESCE({override}, concurrency_limit, {total}),
  concurrency_queue = {queue},
  concurrency_key = COALESCE(concurrency_key, '')"""
    return f"""
UPDATE runs SET
  status = 'EXECUTING',
  attempt_count = attempt_count + CASE WHEN suspended THEN 0 ELSE 1 END,
  lease_owner = :owner, lease_expires_at = :lease,
  started_at = COALESCE(started_at, :now), executing_since = :now, updated_at = :now,
  attempt_execution_ms = CASE WHEN suspended THEN attempt_execution_ms ELSE 0 END,
  attempt_started_at = CASE WHEN suspended THEN attempt_started_at ELSE :now END,
  suspended = false{stamp}
WHERE id = :rid AND status = 'QUEUED' AND (available_at IS NULL OR available_at <= :now)
  {gate}
RETURNING {cols}"""


def _build_claim(limited: bool = False) -> Any:
    """The claim, written out once: SQLAlchemy would re-key the statement on every call,
    and this runs once per attempt (same SQL on Postgres and SQLite ≥ 3.35)."""
    return (
        text(_claim_sql(limited))
        .bindparams(
            bindparam("now", type_=t.UTCDateTime()), bindparam("lease", type_=t.UTCDateTime())
        )
        .columns(*(t.runs.c[name] for name in CLAIMED_COLUMNS))
    )


#: what a worker reads of a claimed run (not the output, error or other wide columns)
CLAIMED_COLUMNS = (
    "id",
    "task_identifier",
    "concurrency_queue",
    "status",
    "queue",
    "machine",
    "payload",
    "metadata",
    "tags",
    "idempotency_key_user",
    "parent_id",
    "root_id",
    "batch_id",
    "depth",
    "resume_parent_on_completion",
    "parent_waitpoint_id",
    "replayed_from",
    "attempt_count",
    "max_attempts",
    "retry",
    "max_duration",
    "created_at",
    "started_at",
    "executing_since",
    "attempt_started_at",
    "attempt_execution_ms",
    "lease_owner",
)
_CLAIM = _build_claim()
_CLAIM_LIMITED = _build_claim(limited=True)
_CLAIM_SQL = _claim_sql()

# A retry on Postgres, written out once: the run back to QUEUED and the failed attempt's
# record in one data-modifying CTE (``%(name)s`` parameters, for psycopg directly).
_RETRY_PG = """
WITH u AS (
  UPDATE runs SET
    updated_at = %(now)s, lease_owner = NULL, lease_expires_at = NULL,
    execution_ms = execution_ms + %(ms)s, attempt_execution_ms = attempt_execution_ms + %(ms)s,
    metadata = COALESCE(CAST(%(metadata)s AS jsonb), metadata),
    status = 'QUEUED', waiting_on = NULL, error = CAST(%(aerror)s AS jsonb),
    available_at = COALESCE(%(retry_at)s, available_at), published_at = NULL
  WHERE id = %(rid)s AND status = 'EXECUTING' AND lease_owner = %(owner)s
    AND attempt_count = %(attempt)s
  RETURNING id)
INSERT INTO run_attempts
  (run_id, number, status, worker, started_at, finished_at, execution_ms, error)
SELECT id, %(attempt)s, %(astatus)s, %(owner)s, %(astarted)s, %(now)s, %(attempt_ms)s,
       CAST(%(aerror)s AS jsonb)
FROM u
RETURNING run_id
"""

# The attempt that ends a run needs no run_attempts row: the run row already holds all of
# it (attempt_count, attempt_started_at, finished_at, attempt_execution_ms, status, error,
# and lease_owner, which a final finish keeps as the worker of that attempt). Store.attempts
# reads it from there; only attempts that did not end the run (retries, crashes, releases)
# are rows. That INSERT was ~a fifth of the Postgres work of a no-op run.
_FINISH_MANY_PG = """
UPDATE runs SET
  updated_at = %(now)s, lease_expires_at = NULL,
  execution_ms = runs.execution_ms + v.ms,
  attempt_execution_ms = runs.attempt_execution_ms + v.ms,
  metadata = COALESCE(v.metadata, runs.metadata),
  status = v.status, waiting_on = NULL, finished_at = %(now)s,
  output = v.output, error = v.error,
  idempotency_key = CASE WHEN v.release THEN NULL ELSE runs.idempotency_key END,
  notify_pending = COALESCE(v.notify, false)
FROM jsonb_to_recordset(CAST(%(rows)s AS jsonb)) AS v(
  rid text, owner text, attempt int, ms bigint, metadata jsonb, status text,
  output jsonb, error jsonb, release boolean, notify boolean)
WHERE runs.id = ANY(%(rids)s) AND runs.id = v.rid AND (runs.status = 'EXECUTING') IS TRUE
  AND runs.lease_owner = v.owner AND runs.attempt_count = v.attempt
RETURNING runs.id
"""

# The hot-path statements go to psycopg directly (``%(name)s`` parameters): SQLAlchemy's
# per-execution bookkeeping was a third of a no-op run's CPU.
_CLAIM_PG = re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", _CLAIM_SQL)
_INSERT_MANY_SQL: dict[tuple[str, ...], str] = {}


def _insert_many_sql(cols: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in cols)
    for c in cols:
        t.runs.c[c]  # noqa: B018 - a key that is not a column fails here, not in SQL
    # key order: two inserters taking the same idempotency keys lock them in one order
    return f"""
WITH ins AS (
  INSERT INTO runs ({names})
  SELECT {names} FROM jsonb_populate_recordset(NULL::runs, CAST(%(rows)s AS jsonb))
  ORDER BY task_identifier, idempotency_key
  ON CONFLICT (task_identifier, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id, tags),
tg AS (
  INSERT INTO run_tags (tag, run_id)
  SELECT jsonb_array_elements_text(tags), id FROM ins WHERE jsonb_typeof(tags) = 'array')
SELECT id FROM ins"""


# The claim for several runs at once (group commit; see Store._claim_batch). "(status = …)
# IS TRUE" in both batch statements keeps status out of the index conditions: the planner
# then finds the batch's rows by primary key. Otherwise it may walk ix_runs_status_id's
# 'EXECUTING' range, where the stale entries of every recent claim lie until vacuum (and
# with the statistics of a moment when few runs executed, it does: measured, +20% PG CPU).
#
# The claim commits without waiting for its WAL flush (synchronous_commit off for this
# transaction only; set_config runs in the WHERE, so it applies to the statement's own
# autocommit transaction). What a lost claim costs — Postgres crashing within ~0.6 s of
# it — is the run back at QUEUED with its message acked once the worker's finish fails:
# the timer republishes it and it runs again, which a crash at any point of an attempt
# already means (runs are at least once). The finish, which records the outcome, still
# waits for the flush, and flushing it flushes the claim before it. Measured: ~20 µs of
# backend CPU and ~100 µs of the claim's round trip per claim.
_CLAIM_MANY_PG = _CLAIM_PG.replace(
    "WHERE id = %(rid)s AND status = 'QUEUED'",
    "WHERE id = ANY(%(rids)s) AND (status = 'QUEUED') IS TRUE"
    " AND set_config('synchronous_commit', 'off', true) IS NOT NULL",
)
assert _CLAIM_MANY_PG != _CLAIM_PG


class RawConnections:
    """One autocommit psycopg connection per thread for the hot-path statements, taken from
    (and counted in) the engine's pool; replaced once if the server dropped it."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._local = threading.local()
        # every live thread's connection, so close() reaches them (the pool's dispose()
        # does not close connections that are checked out); weak, so a dead thread's is
        # still closed by the GC
        self._all: weakref.WeakSet[Any] = weakref.WeakSet()
        self._all_lock = threading.Lock()

    def close(self) -> None:
        with self._all_lock:
            holders, self._all = list(self._all), weakref.WeakSet()
        for holder in holders:
            with contextlib.suppress(Exception):
                holder.invalidate()

    def _conn(self) -> Any:
        holder = getattr(self._local, "holder", None)
        if holder is None or holder.driver_connection.closed:
            holder = self.engine.raw_connection()
            conn: Any = holder.driver_connection
            conn.autocommit = True
            # Each statement here is prepared once and looks rows up by primary key (or
            # inserts), so one generic plan serves every call. Left to choose, Postgres
            # re-plans `id = ANY(%(rids)s)` for every execution (a custom plan for 3 ids
            # looks cheaper than a generic one for an array of unknown size): measured,
            # that planning was a third of the backend CPU of a claim and finish. The
            # setting stays on this connection: it is never checked back into the pool
            # (dropped connections are invalidated; a dead thread's is closed by the GC).
            conn.execute("SET plan_cache_mode = force_generic_plan")
            self._local.holder = holder
            with self._all_lock:
                self._all.add(holder)
        return holder.driver_connection

    def fetch_one(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.fetch_all(sql, params)
        return rows[0] if rows else None

    def fetch_all(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one prepared statement; on a dropped connection, once more on a new one."""
        import psycopg
        from psycopg.pq import ExecStatus
        from psycopg.rows import dict_row

        for attempt in (1, 2):
            conn = self._conn()
            try:
                with conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(sql, params, prepare=True)
                    # not `cur.description`: it builds a Column object per column on every
                    # call, ~100 µs for the claim's 26 (a third of its client CPU)
                    result = cur.pgresult
                    if result is None or result.status != ExecStatus.TUPLES_OK:
                        return []
                    return cur.fetchall()
            except psycopg.OperationalError:
                self._drop()
                if attempt == 2:
                    raise
        return []

    def _drop(self) -> None:
        holder = getattr(self._local, "holder", None)
        self._local.holder = None
        if holder is not None:
            with self._all_lock:
                self._all.discard(holder)
            with contextlib.suppress(Exception):
                holder.invalidate()


def _timer_probe() -> Any:
    r, w = t.runs.c, t.waitpoints.c
    now = bindparam("now", type_=t.UTCDateTime())
    pending = [RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.PENDING_VERSION]
    probes = {
        "delayed": exists().where(r.status == RunStatus.DELAYED, r.available_at <= now),
        "waitpoints": exists().where(w.status == "PENDING", w.due_at <= now),
        "expired": exists().where(r.expires_at <= now, r.status.in_(pending)),
        "crashed": exists().where(r.status == RunStatus.EXECUTING, r.lease_expires_at < now),
        "orphaned_waits": exists(
            select(r.id)
            .select_from(t.runs.join(t.waitpoints, w.id == r.waiting_on))
            .where(r.status == RunStatus.WAITING, w.status != "PENDING")
        ),
        "slots": exists().where(r.waiting_for_slot, r.status == RunStatus.QUEUED),
        "published": exists().where(r.status == RunStatus.QUEUED, r.published_at.is_(None)),
        "hooks": exists().where(r.on_complete_pending.is_(True)),
        "notify": exists().where(r.notify_pending.is_(True)),
        "metadata_ops": exists().where(t.run_metadata_ops.c.id.is_not(None)),
    }
    return select(*(probe.label(name) for name, probe in probes.items()))


#: one statement telling the timer loop which of its steps have work (Store.timer_work)
_TIMER_PROBE = _timer_probe()

#: what Store.attempts needs of a run row to rebuild its last attempt
_LAST_ATTEMPT_COLUMNS = (
    "id",
    "status",
    "attempt_count",
    "attempt_started_at",
    "executing_since",
    "finished_at",
    "attempt_execution_ms",
    "lease_owner",
    "lease_expires_at",
    "error",
)


def _last_attempt_from_run(run: Row | None, rows: Sequence[Row]) -> dict[str, Any] | None:
    """The final attempt of an ended run when it has no record of its own."""
    if run is None or not RunStatus(run["status"]).is_final or not run["attempt_count"]:
        return None
    if run["finished_at"] is None or (rows and rows[-1]["number"] >= run["attempt_count"]):
        return None
    if run["lease_expires_at"] is not None:  # canceled mid-attempt: its worker closes it
        return None
    started = run["attempt_started_at"] or run["executing_since"]
    if started is None:  # never executed (canceled or expired while queued)
        return None
    return {
        "run_id": run["id"],
        "number": run["attempt_count"],
        "status": run["status"],
        "worker": run["lease_owner"],
        "started_at": started,
        "finished_at": run["finished_at"],
        "execution_ms": run["attempt_execution_ms"],
        "error": None if run["status"] == RunStatus.COMPLETED.value else run["error"],
    }


_SET_METADATA = (
    update(t.runs)
    .where(t.runs.c.id == bindparam("rid"), t.runs.c.status == RunStatus.EXECUTING.value)
    .values(metadata=bindparam("meta", type_=t.Json))
)
