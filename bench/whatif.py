"""What-if prototypes of the hot-path changes proposed in ``bench/README.md``.

NOT part of the runtime and never imported by it: ``bench/tasks.py`` imports this module in
benchmark workers only when ``BENCH_WHATIF`` names some of the variants below (comma
separated), so the effect of a proposed change can be measured on the real worker before
anyone edits ``runtime/``:

* ``noping``: the engine's pool does not ping on checkout (``pool_pre_ping=False``).
* ``claim``: ``Store.claim`` runs one pre-built SQL text (no per-call statement
  construction, cache-key generation or result type processing) on a connection the worker
  thread keeps.
* ``finish``: ``Store.finish_attempt`` for a plain COMPLETED attempt (no logs, no metadata,
  no parent waiting) is one autocommit statement — a CTE that updates the run and inserts
  the attempt record — instead of ping + BEGIN + UPDATE + INSERT + COMMIT.
* ``quiet``: the per-attempt INFO lines (started / finished) are not logged.
* ``narrow`` (with ``claim``): the claim returns the ~27 columns the worker reads instead of
  all of them (``RETURNING *``).
* ``noattempt`` (with ``finish``): a plain COMPLETED first attempt writes no ``run_attempts``
  row (the run row already has its timings); only to measure what that INSERT costs.
* ``raw`` (with ``claim``/``finish``): the statements go straight to the psycopg connection
  under SQLAlchemy's (no SQLAlchemy execution context or result object).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy import text

CLAIM = text(
    """
UPDATE runs SET status = 'EXECUTING',
  attempt_count = attempt_count + CASE WHEN suspended THEN 0 ELSE 1 END,
  lease_owner = :owner, lease_expires_at = now() + make_interval(secs => :lease),
  started_at = coalesce(started_at, now()), executing_since = now(), updated_at = now(),
  attempt_execution_ms = CASE WHEN suspended THEN attempt_execution_ms ELSE 0 END,
  attempt_started_at = CASE WHEN suspended THEN attempt_started_at ELSE now() END,
  suspended = false
WHERE id = :id AND status = 'QUEUED' AND (available_at IS NULL OR available_at <= now())
RETURNING *
"""
)

NARROW_COLUMNS = (
    "id, task_identifier, status, queue, machine, payload, metadata, tags, "
    "idempotency_key_user, parent_id, root_id, batch_id, depth, replayed_from, attempt_count, "
    "max_attempts, retry, max_duration, created_at, started_at, executing_since, "
    "attempt_started_at, attempt_execution_ms, lease_owner, error, "
    "resume_parent_on_completion, parent_waitpoint_id"
)

FINISH_ONLY = text(
    """
UPDATE runs SET status = 'COMPLETED', finished_at = now(), updated_at = now(),
  output = CAST(:output AS jsonb), error = NULL, waiting_on = NULL,
  lease_owner = NULL, lease_expires_at = NULL,
  execution_ms = execution_ms + :ms, attempt_execution_ms = attempt_execution_ms + :ms
WHERE id = :id AND status = 'EXECUTING' AND lease_owner = :owner AND attempt_count = :attempt
"""
)

FINISH_COMPLETED = text(
    """
WITH u AS (
  UPDATE runs SET status = 'COMPLETED', finished_at = now(), updated_at = now(),
    output = CAST(:output AS jsonb), error = NULL, waiting_on = NULL,
    lease_owner = NULL, lease_expires_at = NULL,
    execution_ms = execution_ms + :ms, attempt_execution_ms = attempt_execution_ms + :ms
  WHERE id = :id AND status = 'EXECUTING' AND lease_owner = :owner AND attempt_count = :attempt
  RETURNING id, attempt_count, attempt_started_at, executing_since, attempt_execution_ms
)
INSERT INTO run_attempts (run_id, number, status, worker, started_at, finished_at, execution_ms)
SELECT id, attempt_count, 'COMPLETED', :owner, coalesce(attempt_started_at, executing_since),
       now(), attempt_execution_ms
FROM u
"""
)


def install(variants: set[str]) -> None:
    from runtime.bootstrap import get_runtime
    from runtime.engine_json import dumps
    from runtime.statuses import RunStatus
    from runtime.store.repository import Store

    rt = get_runtime()
    store = rt.store
    local = threading.local()

    def conn() -> Any:
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = store.autocommit.connect()
        return c

    claim_sql = CLAIM
    if "narrow" in variants:
        claim_sql = text(CLAIM.text.replace("RETURNING *", f"RETURNING {NARROW_COLUMNS}"))
    finish_sql = FINISH_ONLY if "noattempt" in variants else FINISH_COMPLETED

    def raw_sql(stmt: Any) -> str:  # :name -> %(name)s for psycopg
        import re

        return re.sub(r"(?<!:):([a-z]+)", r"%(\1)s", stmt.text)

    raw_claim, raw_finish = raw_sql(claim_sql), raw_sql(finish_sql)

    def raw_conn() -> Any:
        return conn().connection.driver_connection

    if "noping" in variants:
        store.engine.pool._pre_ping = False
    if "claim" in variants:

        def claim(self: Store, run_id: str, owner: str, lease_seconds: float) -> Any:
            params = {"id": run_id, "owner": owner, "lease": lease_seconds}
            if "raw" in variants:
                from psycopg.rows import dict_row

                cur = raw_conn().cursor(row_factory=dict_row)
                return cur.execute(raw_claim, params).fetchone()
            return conn().execute(claim_sql, params).mappings().first()

        Store.claim = claim  # type: ignore[method-assign]
    if "finish" in variants:
        original = Store.finish_attempt

        def finish_attempt(self: Store, run: Any, owner: str, **kw: Any) -> bool:
            plain = (
                kw.get("status") == RunStatus.COMPLETED
                and not kw.get("logs")
                and kw.get("metadata") is None
                and kw.get("error") is None
                and not run["resume_parent_on_completion"]
            )
            if not plain:
                return original(self, run, owner, **kw)
            params = {
                "id": run["id"],
                "owner": owner,
                "attempt": run["attempt_count"],
                "ms": kw.get("execution_ms", 0),
                "output": dumps(kw.get("output")),
            }
            if "raw" in variants:
                return raw_conn().execute(raw_finish, params).rowcount == 1
            return conn().execute(finish_sql, params).rowcount == 1

        Store.finish_attempt = finish_attempt  # type: ignore[method-assign]
    if "quiet" in variants:
        logging.getLogger("buster.worker").setLevel(logging.WARNING)


def install_from_env() -> None:
    variants = {v.strip() for v in os.environ.get("BENCH_WHATIF", "").split(",") if v.strip()}
    if variants:
        install(variants)
