"""One settings object for every process, read from ``BUSTER_*`` environment variables.

Every timing knob is here so tests can shrink intervals to milliseconds instead of sleeping.
Secrets (database password inside the URL, broker URL, encryption key) come from the
environment only; nothing here has a secret default.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .run_webhooks import RunWebhook, check_names


class Settings(BaseSettings):
    # an invalid value is named, never shown: it may be a URL with a password or a secret
    model_config = SettingsConfigDict(env_prefix="BUSTER_", extra="ignore",
                                      hide_input_in_errors=True)

    # --- where things live -------------------------------------------------------------
    #: SQLAlchemy URL of the run store. Empty: a SQLite file under ``data_dir`` (embedded).
    database_url: SecretStr | None = None
    #: amqp:// URL of RabbitMQ. Empty: Dramatiq's in-process broker (embedded default).
    broker_url: SecretStr | None = None
    #: Folder for the embedded default: SQLite store, sample warehouse, generated key.
    data_dir: Path = Path(".buster")
    #: Task modules a worker imports (comma separated), like Trigger.dev's ``dirs``.
    task_modules: str = "actors"
    #: Run Alembic migrations automatically when a process first opens the store.
    auto_migrate: bool = True
    #: Fernet key that encrypts SecretStr payload fields and data-source credentials.
    #: Empty on the embedded default: a key file is generated in ``data_dir``.
    encryption_key: SecretStr | None = None

    # --- runs ----------------------------------------------------------------------------
    #: Seconds a claimed attempt owns its run without renewing; a lapse means the worker died.
    lease_seconds: float = 30.0
    #: Seconds between lease renewals (one UPDATE per worker process, not per run).
    heartbeat_seconds: float = 10.0
    #: Default max_duration (seconds of execution) for tasks that set none. 0 disables.
    default_max_duration: float = 3600.0
    #: Default retry policy, as in Trigger.dev's config (max_attempts counts the first one).
    default_max_attempts: int = 3
    default_retry_factor: float = 2.0
    default_retry_min_timeout_ms: int = 1000
    default_retry_max_timeout_ms: int = 60_000
    default_retry_randomize: bool = True
    #: Idempotency keys live this long unless the trigger says otherwise (Trigger.dev: 30 d).
    default_idempotency_key_ttl_seconds: float = 30 * 24 * 3600.0
    #: Limits that match Trigger.dev's.
    max_tags: int = 10
    max_tag_length: int = 128
    metadata_max_bytes: int = 256 * 1024
    max_payload_bytes: int = 3 * 1024 * 1024
    #: A run's output, a ``wait.step`` result, a wait token's data (stored JSON, bytes).
    max_output_bytes: int = 10 * 1024 * 1024
    max_batch_size: int = 1000
    #: Waits at or under this many seconds sleep in place; longer ones suspend the run.
    inline_wait_threshold_seconds: float = 5.0

    # --- logs ----------------------------------------------------------------------------
    #: Run logs and metadata are buffered and flushed at least this often.
    log_flush_seconds: float = 1.0

    # --- timer loop ----------------------------------------------------------------------
    #: Seconds between timer-loop ticks (delays, retries, resumes, TTL, leases, publishes).
    timer_interval_seconds: float = 0.25
    #: Rows each timer step handles per tick.
    timer_batch_size: int = 500
    #: A QUEUED run whose publish was never confirmed is published again after this long.
    unpublished_grace_seconds: float = 5.0
    #: A published QUEUED run nobody claimed (message lost) is republished after this long.
    stale_queued_seconds: float = 600.0
    #: How often the timer loop releases runs whose trigger named a queue nothing declared
    #: once something does (a worker starting up releases them at once).
    pending_queue_check_seconds: float = 5.0
    #: Runs a bulk action in the background cancels or replays per page (a thread beside
    #: each timer loop works through them: runtime/bulk_actions.py).
    bulk_action_page_size: int = 100

    # --- retention (the timer loop) -----------------------------------------------------
    #: Finished runs are deleted this many days after they finished, with their attempts,
    #: logs, steps and waitpoints (Trigger.dev keeps 30 days of runs). 0 keeps every run.
    run_retention_days: float = 30.0
    #: Seconds between retention passes; while old runs remain, every timer tick deletes
    #: another batch.
    retention_interval_seconds: float = 600.0
    #: Runs deleted per transaction (small batches keep locks and WAL bursts short).
    retention_batch_size: int = 1000

    # --- run webhooks (the timer loop; runtime/run_webhooks.py) -------------------------
    #: Endpoints POSTed when runs end: a JSON object of name -> ``{"url", "format",
    #: "secret", "statuses", "tasks", "tags", "timeout_seconds", "max_attempts"}``. Every
    #: process that ends runs (workers, scheduler, dashboard) must have the same value.
    run_webhooks: dict[str, RunWebhook] = Field(default_factory=dict)
    #: Seconds between a sender's looks for due deliveries.
    run_webhook_poll_seconds: float = 1.0
    #: Seconds between a process's reads of the endpoints added at runtime
    #: (runtime/run_webhook_endpoints.py): how soon one added or removed takes effect.
    run_webhook_refresh_seconds: float = 5.0
    #: The dashboard's public origin, for a link to the run in each webhook; empty: none.
    #: The same variable as the dashboard's own (``BUSTER_DASHBOARD_PUBLIC_URL``).
    dashboard_public_url: str = ""

    @field_validator("run_webhooks")
    @classmethod
    def _webhook_names(cls, value: dict[str, RunWebhook]) -> dict[str, RunWebhook]:
        check_names(value)
        return value

    # --- schedules (the scheduler process) ---------------------------------------------
    #: Seconds between the scheduler's cheap "did any schedule change?" checks. On SQLite
    #: this is how a change is noticed; on Postgres LISTEN/NOTIFY is instant and this is
    #: the safety net for a dropped listener connection.
    schedule_poll_seconds: float = 2.0
    #: A tick missed by at most this many seconds still fires, once (a scheduler that was
    #: down, or fell behind). Older ticks are skipped: never a backlog storm.
    schedule_misfire_grace_seconds: float = 300.0
    #: Fires are written (fire rows + runs) in batches of up to this many rows, so 10,000
    #: schedules on one minute cost ~10 transactions, not 10,000.
    schedule_fire_batch_size: int = 1000
    #: How long the fire writer waits for more ticks to fill a batch before writing.
    schedule_fire_linger_seconds: float = 0.02
    #: TEST ONLY: accept a 6-field cron with a leading seconds field, so tests can run an
    #: every-second schedule instead of waiting for minutes. Never set in production.
    test_only_cron_seconds_field: bool = False

    # --- worker --------------------------------------------------------------------------
    #: Seconds a stopping worker lets running attempts finish before handing them back.
    shutdown_timeout_seconds: float = 30.0
    #: Seconds between a worker's presence heartbeats (dashboard: workers online).
    worker_presence_seconds: float = 10.0
    #: Folder where worker and scheduler processes write a heartbeat file every presence
    #: tick, read by ``buster-jobs healthcheck`` (Kubernetes exec probes). Empty: none.
    health_dir: Path | None = None

    # --- machine presets: name -> queue; large presets get their own queue -------------
    large_queue: str = "large"
    default_queue: str = "default"

    # --- test / embedded conveniences ----------------------------------------------------
    #: Log format for entry points: "text" or "json".
    log_format: str = Field(default="text")

    def store_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'buster.db').resolve()}"

    def amqp_url(self) -> str | None:
        return self.broker_url.get_secret_value() if self.broker_url is not None else None

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url is None

    def task_module_list(self) -> list[str]:
        return [m.strip() for m in self.task_modules.split(",") if m.strip()]
