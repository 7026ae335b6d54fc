"""The schema, declared once. Alembic migrations are checked against it by a test.

Rules live here as database guarantees: the unique index on (task, idempotency key) makes
concurrent triggers collapse into one run; the unique (schedule, fire time) makes a cron tick
fire once however many schedulers run. Indexes serve the dashboard's and timer loop's queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps naive strings: we add the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
metadata = MetaData()


def _where(predicate: str) -> dict[str, Any]:
    """A partial index's predicate, the same on Postgres and SQLite."""
    return {"postgresql_where": text(predicate), "sqlite_where": text(predicate)}


task_definitions = Table(
    "task_definitions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("queue", String(128), nullable=False),
    Column("machine", String(32), nullable=False),
    Column("retry", Json, nullable=False),
    Column("max_duration", Float),
    Column("payload_schema", Json),
    Column("kind", String(16), nullable=False, server_default="STANDARD"),
    Column("version", String(64), nullable=False),
    Column("module", String(256)),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("concurrency_limit", Integer),
    Column("total_concurrency_limit", Integer),
    # the shared queue (runtime/shared_queues.py) whose slots its runs take; None: its own
    Column("concurrency_queue", String(128)),
)

# Shared queues declared in workers' code (``queue()``, runtime/shared_queues.py), synced
# with the task definitions: producers without the code find a queue a trigger names here
queue_definitions = Table(
    "queue_definitions",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("concurrency_limit", Integer),
    Column("total_concurrency_limit", Integer),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Ops' hold on a task's queue (Trigger.dev's queues.pause / overrideConcurrencyLimit): a row
# exists only while the task is paused or its limit overridden, so the ordinary claim's
# check for one is a miss on a near-empty table
queue_controls = Table(
    "queue_controls",
    metadata,
    # the queue's name: a task's id, or a shared queue's name (runtime/shared_queues.py)
    Column("task_identifier", String(128), primary_key=True),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("paused_at", UTCDateTime),
    Column("paused_by", String(128)),
    Column("concurrency_limit", Integer),
    Column("total_concurrency_limit", Integer),
    Column("overridden_at", UTCDateTime),
    Column("overridden_by", String(128)),
    Column("updated_at", UTCDateTime, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("task_identifier", String(128), nullable=False),
    Column("status", String(24), nullable=False),
    Column("queue", String(128)),
    Column("machine", String(32)),
    Column("task_version", String(64)),
    Column("payload", Json),
    Column("output", Json),
    Column("error", Json),
    Column("metadata", Json),
    Column("tags", Json),
    # idempotency: the unique index below is the guarantee; a released key is moved aside
    Column("idempotency_key", String(2048)),
    Column("idempotency_key_user", String(2048)),
    Column("idempotency_key_scope", String(16)),
    Column("idempotency_key_expires_at", UTCDateTime),
    # relations
    Column("parent_id", String(40)),
    Column("root_id", String(40)),
    Column("batch_id", String(40)),
    Column("depth", Integer, nullable=False, server_default="0"),
    Column("resume_parent_on_completion", Boolean, nullable=False, server_default=text("false")),
    Column("parent_waitpoint_id", String(48)),
    Column("replayed_from", String(40)),
    Column("schedule_id", String(48)),
    Column("trigger_function", String(32)),
    # attempts and limits
    Column("attempt_count", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer),
    Column("retry", Json),
    Column("max_duration", Float),
    Column("ttl_seconds", Float),
    # timing: available_at gates claims (delays, retry backoff); expires_at is the TTL
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("available_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("delay_until", UTCDateTime),
    Column("published_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("executing_since", UTCDateTime),
    Column("attempt_started_at", UTCDateTime),
    # true while the current attempt is suspended (WAITING) or handed back on shutdown:
    # the next claim continues that attempt instead of starting a new one
    Column("suspended", Boolean, nullable=False, server_default=text("false")),
    Column("finished_at", UTCDateTime),
    Column("execution_ms", BigInteger, nullable=False, server_default="0"),
    Column("attempt_execution_ms", BigInteger, nullable=False, server_default="0"),
    # the lease of the attempt that is executing; once the run has ended, lease_owner keeps
    # the worker of its last attempt (that attempt is read from this row, see Store.attempts)
    Column("lease_owner", String(128)),
    Column("lease_expires_at", UTCDateTime),
    # waits
    Column("waiting_on", String(48)),
    Column("on_complete_pending", Boolean, nullable=False, server_default=text("false")),
    # set by the statement that ends the run when a run webhook wants its final status
    # (runtime/run_webhooks.py); the timer loop records its deliveries and clears it
    Column("notify_pending", Boolean, nullable=False, server_default=text("false")),
    # concurrency: a run of a task with a concurrency_limit takes one of its queue's slots
    # while EXECUTING (one set of slots per concurrency_key, '' for none); a claim that finds
    # them all taken leaves the run QUEUED and waiting_for_slot, and the timer loop wakes it.
    # The queue is its task's id, or the shared queue its task is in (set at trigger; NULL
    # only on runs from before shared queues, which count as their task's)
    Column("concurrency_queue", String(128)),
    Column("concurrency_key", String(256)),
    Column("concurrency_limit", Integer),
    Column("waiting_for_slot", Boolean, nullable=False, server_default=text("false")),
    # debounce (runtime/store/debounce.py): the trigger's key while the run is DELAYED
    # (further triggers with it push the start), and the latest start max_delay allows
    Column("debounce_key", String(512)),
    Column("debounce_until", UTCDateTime),
    # the queue a trigger named that nothing declared (no task, worker or queue()): the run
    # waits in PENDING_VERSION until one is (runtime/pending_queues.py), NULL otherwise
    Column("pending_queue", String(128)),
)
# partial: most runs have no key, and a full index would take an entry on every status update
Index(
    "ix_runs_idempotency",
    runs.c.task_identifier,
    runs.c.idempotency_key,
    unique=True,
    **_where("idempotency_key IS NOT NULL"),
)
Index("ix_runs_status_id", runs.c.status, runs.c.id)
# the dashboard finds runs by the key a user gave (idempotency_key holds its hash)
Index(
    "ix_runs_idempotency_user",
    runs.c.idempotency_key_user,
    **_where("idempotency_key_user IS NOT NULL"),
)
Index("ix_runs_task_id", runs.c.task_identifier, runs.c.id)
# No index on created_at: run ids sort by creation time, so the primary key serves time
# windows. Relation indexes are partial: most runs have no parent, batch or schedule, and
# every index a run row is in costs work on each of its status updates.
Index(
    "ix_runs_parent",
    runs.c.parent_id,
    **_where("parent_id IS NOT NULL"),
)
Index(
    "ix_runs_batch",
    runs.c.batch_id,
    **_where("batch_id IS NOT NULL"),
)
Index(
    "ix_runs_schedule",
    runs.c.schedule_id,
    runs.c.id,
    **_where("schedule_id IS NOT NULL"),
)
# timer-loop scans touch only the few rows in transient states (partial on Postgres)
Index(
    "ix_runs_unpublished",
    runs.c.available_at,
    **_where("published_at IS NULL AND status = 'QUEUED'"),
)
Index(
    "ix_runs_leases",
    runs.c.lease_expires_at,
    **_where("status = 'EXECUTING'"),
)
Index(
    "ix_runs_delayed",
    runs.c.available_at,
    **_where("status = 'DELAYED'"),
)
Index(
    "ix_runs_expiring",
    runs.c.expires_at,
    **_where(
        "expires_at IS NOT NULL AND status IN ('QUEUED','DELAYED','PENDING_VERSION')"
    ),
)

# concurrency slots: the limited runs holding one (EXECUTING) or about to claim one
# (QUEUED, not waiting), counted per group without visiting the group's waiting backlog,
# and the runs waiting for one, oldest first. Only runs of limited tasks, only while
# QUEUED or EXECUTING: both stay tiny
Index(
    "ix_runs_slots",
    runs.c.concurrency_queue,
    runs.c.concurrency_key,
    runs.c.status,
    runs.c.waiting_for_slot,
    **_where("concurrency_limit IS NOT NULL AND status IN ('EXECUTING', 'QUEUED')"),
)
# the limited runs holding a slot or on their way to a claim, without the waiting backlog
# (which can be 100,000s of runs of a paused or busy task): the wake step counts every
# group's from here each tick, and a task's total over its keys is a range of it
Index(
    "ix_runs_busy_slots",
    runs.c.concurrency_queue,
    runs.c.status,
    runs.c.concurrency_key,
    **_where("concurrency_limit IS NOT NULL AND (status = 'EXECUTING' "
             "OR (status = 'QUEUED' AND NOT waiting_for_slot))"),
)
Index(
    "ix_runs_slot_waiting",
    runs.c.concurrency_queue,
    runs.c.concurrency_key,
    runs.c.id,
    # a run that leaves QUEUED (claimed, canceled, expired) drops out by itself
    **_where("waiting_for_slot AND status = 'QUEUED'"),
)

# one DELAYED run per (task, debounce key): a promoted run leaves it, and the next
# trigger with the key starts a new run
Index(
    "ix_runs_debounce",
    runs.c.task_identifier,
    runs.c.debounce_key,
    unique=True,
    **_where("debounce_key IS NOT NULL AND status = 'DELAYED'"),
)

Index(
    "ix_runs_hooks_pending",
    runs.c.id,
    **_where("on_complete_pending"),
)
Index(
    "ix_runs_notify_pending",
    runs.c.id,
    **_where("notify_pending"),
)
# the few runs waiting for their trigger's queue to be declared, read every few seconds (a
# run canceled or expired meanwhile leaves it)
Index(
    "ix_runs_pending_queue",
    runs.c.pending_queue,
    **_where("pending_queue IS NOT NULL AND status = 'PENDING_VERSION'"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("tag", String(128), primary_key=True),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
)
Index("ix_run_tags_run", run_tags.c.run_id)

run_attempts = Table(
    "run_attempts",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("status", String(24), nullable=False),
    Column("worker", String(128)),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("execution_ms", BigInteger),
    Column("error", Json),
)

run_logs = Table(
    "run_logs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Column("attributes", Json),
)
Index("ix_run_logs_run", run_logs.c.run_id, run_logs.c.id)

# metadata changes a run sent to its parent's or root's document (metadata.parent.*,
# metadata.root.*), applied in order by the target's own worker while it executes (it owns
# its document in memory) and by the timer loop otherwise (runtime/store/metadata_ops.py)
run_metadata_ops = Table(
    "run_metadata_ops",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("ops", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_run_metadata_ops_run", run_metadata_ops.c.run_id, run_metadata_ops.c.id)

# Run webhooks (runtime/run_webhooks.py): one delivery per (endpoint, run), its body frozen
# when recorded, posted until a 2xx or max_attempts; deleted with its run (retention)
run_webhook_deliveries = Table(
    "run_webhook_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("endpoint", String(64), nullable=False),
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("run_status", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
)
# Run webhook endpoints ops add at runtime (runtime/run_webhook_endpoints.py), beside those
# of BUSTER_RUN_WEBHOOKS: the whole endpoint — its URL and secret included — encrypted
run_webhook_endpoints = Table(
    "run_webhook_endpoints",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("config", LargeBinary, nullable=False),  # Fernet-encrypted JSON
    Column("created_by", String(256)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Bulk actions run in the background (runtime/bulk_actions.py): cancel or replay what a
# filter (or a list of run ids) names, a page per timer tick, resumable where it stopped
bulk_actions = Table(
    "bulk_actions",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("action", String(16), nullable=False),  # cancel | replay
    Column("name", String(256)),
    Column("filters", Json),  # runs.list's filters (times as ISO text); None with run_ids
    Column("run_ids", Json),
    Column("status", String(16), nullable=False),  # PENDING | COMPLETED | ABORTED
    # where the walk is: the last run walked (filters), or how many run_ids are done
    Column("cursor", String(48)),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("success", Integer, nullable=False, server_default="0"),
    Column("failure", Integer, nullable=False, server_default="0"),
    # a timer loop working on a page holds it until then (another takes it over after)
    Column("lease_until", UTCDateTime),
    Column("created_by", String(256)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
)
Index("ix_bulk_actions_pending", bulk_actions.c.created_at, **_where("status = 'PENDING'"))

Index(
    "ix_run_webhook_deliveries_run",
    run_webhook_deliveries.c.run_id,
    run_webhook_deliveries.c.endpoint,
    unique=True,
)
Index(
    "ix_run_webhook_deliveries_due",
    run_webhook_deliveries.c.next_attempt_at,
    **_where("status = 'pending'"),
)

waitpoints = Table(
    "waitpoints",
    metadata,
    Column("id", String(48), primary_key=True),
    # DATETIME (wait.for/until), RUN (trigger_and_wait), BATCH, MANUAL (tokens)
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # PENDING | COMPLETED | TIMED_OUT | CANCELED
    Column("run_id", String(40)),  # the run that waits on it, once known
    Column("due_at", UTCDateTime),  # DATETIME due time, or a token's timeout
    Column("output", Json),
    Column("output_is_error", Boolean, nullable=False, server_default=text("false")),
    Column("idempotency_key", String(2048)),
    Column("idempotency_key_expires_at", UTCDateTime),
    Column("tags", Json),
    Column("total", Integer),  # BATCH: children to wait for
    Column("done", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
)
Index("ix_waitpoints_idempotency", waitpoints.c.idempotency_key, unique=True)
Index(
    "ix_waitpoints_due",
    waitpoints.c.due_at,
    **_where("status = 'PENDING' AND due_at IS NOT NULL"),
)
Index("ix_waitpoints_run", waitpoints.c.run_id)

run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", String(40), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),  # wait | child | batch | token | step
    Column("name", String(256), nullable=False),
    Column("waitpoint_id", String(48)),
    Column("child_ids", Json),
    Column("result", Json),
    Column("created_at", UTCDateTime, nullable=False),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("task_identifier", String(128), nullable=False),
    Column("type", String(16), nullable=False),  # DECLARATIVE | IMPERATIVE
    Column("cron", String(128), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("external_id", String(256)),
    Column("deduplication_key", String(256), unique=True),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("skip_if_active", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("schedule_id", String(48), primary_key=True),
    Column("fire_time", UTCDateTime, primary_key=True),
    Column("run_id", String(40)),
    Column("skipped", Boolean, nullable=False, server_default=text("false")),
    Column("reason", String(256)),
    Column("created_at", UTCDateTime, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("hostname", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("queues", Json, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

data_sources = Table(
    "data_sources",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("name", String(256), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("credentials", LargeBinary, nullable=False),  # Fernet-encrypted JSON
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# ----------------------------------------------------------------------------------------
# dashboard / HTTP API (dashboard/): API keys, two-phase batches, request idempotency
# ----------------------------------------------------------------------------------------

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("name", String(128), nullable=False),
    # sha256 of the key: a leaked table does not leak usable keys (keys are long and random,
    # so a plain hash is enough; no slow KDF needed)
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),  # shown in listings to tell keys apart
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

api_batches = Table(
    "api_batches",
    metadata,
    Column("id", String(48), primary_key=True),
    Column("run_count", Integer, nullable=False),
    Column("task_identifiers", Json),
    # the SDK's per-call x-trigger-request-idempotency-key: a retried create makes no 2nd batch
    Column("request_key", String(128), unique=True),
    Column("idempotency_key", String(2048), unique=True),
    Column("idempotency_key_user", String(2048)),
    Column("sealed", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("sealed_at", UTCDateTime),
)

api_batch_items = Table(
    "api_batch_items",
    metadata,
    # (batch, index) is the dedupe key: the SDK re-sends the whole NDJSON stream on retry
    Column("batch_id", String(48), primary_key=True),
    Column("item_index", Integer, primary_key=True),
    Column("run_id", String(40)),
    Column("created_at", UTCDateTime, nullable=False),
)

api_requests = Table(
    "api_requests",
    metadata,
    # a claimed request key; the response is stored once the first request finished, so a
    # retried request (same x-trigger-request-idempotency-key) replays it instead of acting
    Column("scope", String(200), primary_key=True),
    Column("request_key", String(128), primary_key=True),
    Column("status_code", Integer),
    Column("body", Json),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("ix_api_requests_created", api_requests.c.created_at)

# --------------------------------------------------------------------------------------
# Data sources and introspected catalogs (area: introspect-data / runtime.datasources).
# A catalog is stored as a snapshot: one row per snapshot plus one row per table. Each
# table row keeps the whole Table (columns, keys, profiles) as JSON *text*, so loading a
# 10,000-table catalog is one SELECT and one pydantic ``model_validate_json`` pass (no
# per-row JSON parsing in Python). A snapshot is written ``staged`` (invisible to readers)
# and flipped to ``current`` in one transaction; the partial unique index guarantees one
# current snapshot per source. The previous one is kept as ``previous`` until the next
# publish, so a reader that looked up the old snapshot id a moment earlier still finds it.
catalog_snapshots = Table(
    "catalog_snapshots",
    metadata,
    Column("id", String(48), primary_key=True),
    Column(
        "source_id",
        String(48),
        ForeignKey("data_sources.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),  # staged | current | previous
    Column("warehouse_type", String(32), nullable=False),
    Column("introspected_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    Column("run_id", String(40)),  # the introspect-data run that produced it, if any
    Column("table_count", Integer, nullable=False),
    Column("counts", Json, nullable=False),
    Column("databases", Json, nullable=False),
    Column("schemas", Json, nullable=False),
)
Index("ix_catalog_snapshots_source", catalog_snapshots.c.source_id, catalog_snapshots.c.status)
Index(
    "ux_catalog_snapshots_current",
    catalog_snapshots.c.source_id,
    unique=True,
    **_where("status = 'current'"),
)

catalog_tables = Table(
    "catalog_tables",
    metadata,
    Column(
        "snapshot_id",
        String(48),
        ForeignKey("catalog_snapshots.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),  # order of the introspected catalog
    Column("database_name", String(256), nullable=False),
    Column("schema_name", String(256), nullable=False),
    Column("name", String(256), nullable=False),
    Column("kind", String(24), nullable=False),
    Column("comment", Text),
    # lower-cased names, comments and sample values: a LIKE over it finds tables by content
    Column("search_text", Text, nullable=False),
    Column("doc", Text, nullable=False),  # connectors.Table as JSON text
)
Index(
    "ix_catalog_tables_name",
    catalog_tables.c.snapshot_id,
    catalog_tables.c.schema_name,
    catalog_tables.c.name,
)

# --- agent (analyst-agent artifacts) ---------------------------------------------------
# One row per metric or dashboard the agent made; ``id`` is derived from the run and the
# tool call (uuid5), so a tool step that runs again after a crash upserts the same row.
agent_artifacts = Table(
    "agent_artifacts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(40), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("type", String(16), nullable=False),  # metric | dashboard
    Column("title", String(512), nullable=False),
    Column("content", Json, nullable=False),  # the metric / dashboard spec (+ validation)
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
Index("ix_agent_artifacts_run", agent_artifacts.c.run_id, agent_artifacts.c.created_at)
Index("ix_agent_artifacts_session", agent_artifacts.c.session_id, agent_artifacts.c.created_at)
