"""Run webhooks: an HTTP POST when a run ends, for ops who want to hear of failed runs without
code in the tasks — Trigger.dev's run-failed alerts to a webhook or Slack, and the
"run finished" webhook its users asked for (their #1212, #3295). Configured per process in
``BUSTER_RUN_WEBHOOKS`` (every process that ends runs — workers, scheduler, dashboard —
reads the same setting)::

    BUSTER_RUN_WEBHOOKS='{
      "oncall": {"url": "https://hooks.slack.com/services/…", "format": "slack"},
      "billing": {"url": "https://billing.internal/runs", "secret": "whsec_…",
                  "statuses": ["COMPLETED", "FAILED"], "tasks": ["send-invoice"]}}'

An endpoint takes the failed final statuses unless it names others (``statuses``), of every
task unless it names some (``tasks``), with any tag unless it names some (``tags``: a run
with one of them).

**Recorded exactly once.** The statement that ends a run also sets its ``notify_pending``
flag when its new status is one an endpoint wants — the same transaction, whichever way the
run ended (its worker, a cancel, a TTL, a crashed worker's lapsed lease). The timer loop
turns flagged runs into one delivery row per matching endpoint, the run's details frozen
as the body, and clears the flags, in one transaction (:func:`record_pending`).

**Delivered at least once.** A sender thread beside the timer loop posts due deliveries
(:func:`send_due`, four at a time), each taken with a lease so two processes never post the
same one at once. A 2xx marks it delivered; anything else is retried after 5 s, 20 s,
80 s … (at most an hour apart) until ``max_attempts``, then it is marked failed and logged.
The ``webhook-id`` header is the same on every attempt, for the receiver to drop repeats.

``format: "standard"`` posts JSON signed as Standard Webhooks are (``webhook-id``,
``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256>`` with the
endpoint's ``whsec_`` secret); ``"slack"`` posts ``{"text": …}`` to a Slack incoming
webhook. The body carries the run's id, task, status, attempts, tags, times and error —
never its payload or output. The URL (Slack's holds its secret) and the secret are never
logged: a log line names the endpoint and the URL's host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import and_, func, select, update

from .durations import utcnow
from .polling import PollingThread
from .statuses import FAILED_STATUSES, FINAL_STATUSES, RunStatus
from .store import tables as t

log = logging.getLogger("buster.run_webhooks")

#: the name of an endpoint: it goes into logs, metrics and the webhook-id header
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: how long a sender owns a delivery it is posting (beyond the request's timeout)
_LEASE_EXTRA_S = 30.0
#: the error kept on a delivery (and logged) is cut to this
_ERROR_CHARS = 300
#: deliveries of one batch posted at once
_POSTERS = 4


class RunWebhook(BaseModel):
    """One endpoint of ``BUSTER_RUN_WEBHOOKS``."""

    # an error names the field, never its value: the url or the secret would show
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    #: where to POST (http or https); a secret in it (Slack's path) is never logged
    url: SecretStr
    #: "standard": signed JSON (Standard Webhooks); "slack": a Slack incoming webhook
    format: Literal["standard", "slack"] = "standard"
    #: Standard Webhooks secret, ``whsec_`` and base64; none: the body is not signed
    secret: SecretStr | None = None
    #: the final statuses to post (default: the failed ones — FAILED, CRASHED,
    #: SYSTEM_FAILURE, TIMED_OUT, EXPIRED)
    statuses: list[RunStatus] = Field(
        default_factory=lambda: sorted(FAILED_STATUSES))
    #: only runs of these tasks (default: every task)
    tasks: list[str] | None = None
    #: only runs carrying one of these tags (default: any run)
    tags: list[str] | None = None
    #: seconds one POST may take
    timeout_seconds: float = Field(10.0, gt=0, le=120)
    #: attempts before a delivery is marked failed
    max_attempts: int = Field(8, ge=1, le=50)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host")
        return value

    @field_validator("secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        try:
            if not raw.startswith("whsec_") or not base64.b64decode(raw[6:], validate=True):
                raise ValueError
        except ValueError:
            raise ValueError("secret must be a Standard Webhooks key: 'whsec_' and base64"
                             ) from None
        return value

    @field_validator("statuses")
    @classmethod
    def _final(cls, value: list[RunStatus]) -> list[RunStatus]:
        if not value:
            raise ValueError("statuses must name at least one final status")
        wrong = [s.value for s in value if s not in FINAL_STATUSES]
        if wrong:
            raise ValueError(f"not final statuses: {', '.join(wrong)} (a run webhook is "
                             f"sent when a run ends)")
        return value

    def wants(self, run: Mapping[str, Any]) -> bool:
        if run["status"] not in self.statuses:
            return False
        if self.tasks is not None and run["task_identifier"] not in self.tasks:
            return False
        return self.tags is None or bool(set(self.tags) & set(run["tags"] or []))

    def host(self) -> str:
        """What a log line may say of the URL."""
        return urlsplit(self.url.get_secret_value()).hostname or "?"

    def public(self, name: str) -> dict[str, Any]:
        """The endpoint as ops may see it: its URL's host, never the URL or the secret."""
        return {"name": name, "host": self.host(), "format": self.format,
                "signed": self.secret is not None,
                "statuses": [s.value for s in self.statuses], "tasks": self.tasks,
                "tags": self.tags, "timeout_seconds": self.timeout_seconds,
                "max_attempts": self.max_attempts}


def check_names(endpoints: Mapping[str, RunWebhook]) -> None:
    for name in endpoints:
        if not re.match(NAME_PATTERN, name):
            raise ValueError(f"run webhook name {name!r}: letters, digits, '_', '.', '-' "
                             "(at most 64)")


def notify_statuses(endpoints: Mapping[str, RunWebhook]) -> frozenset[str]:
    """The final statuses some endpoint wants: the runs ending in one are flagged."""
    return frozenset(s.value for e in endpoints.values() for s in e.statuses)


# ---------------------------------------------------------------------------- recording
_RUN_COLUMNS = ("id", "task_identifier", "status", "attempt_count", "tags", "error",
                "created_at", "started_at", "finished_at", "execution_ms", "replayed_from",
                "parent_id", "root_id", "batch_id", "schedule_id", "idempotency_key_user")


def record_pending(store: Any, endpoints: Mapping[str, RunWebhook], limit: int,
                   dashboard_url: str = "") -> int:
    """Turn up to ``limit`` flagged runs into deliveries (one per endpoint that wants the
    run) and clear their flags, in one transaction; returns the deliveries recorded. A run
    no endpoint wants any longer (the setting changed) is only cleared."""
    r = t.runs.c
    now = utcnow()
    with store.engine.begin() as conn:
        runs = conn.execute(
            select(*(r[c] for c in _RUN_COLUMNS))
            .where(r.notify_pending.is_(True))
            .order_by(r.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).mappings().all()
        if not runs:
            return 0
        ids = [run["id"] for run in runs]
        rows = []
        for run in runs:
            for name, endpoint in endpoints.items():
                if not endpoint.wants(run):
                    continue
                rows.append({
                    "endpoint": name, "run_id": run["id"], "run_status": run["status"],
                    "body": render(endpoint, name, run, dashboard_url), "status": "pending",
                    "attempts": 0, "next_attempt_at": now, "created_at": now,
                })
        if rows:
            # SQLite has no SKIP LOCKED: two processes may pick the same flagged run, and
            # the unique (run, endpoint) index keeps the second one's row out (it is still
            # counted in the number returned)
            conn.execute(store._insert(t.run_webhook_deliveries).on_conflict_do_nothing(),
                         rows)
        conn.execute(update(t.runs).where(r.id.in_(ids)).values(notify_pending=False))
    return len(rows)


def run_document(run: Mapping[str, Any], dashboard_url: str = "") -> dict[str, Any]:
    """The run as a webhook shows it: no payload, no output."""
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    error = run["error"] or None
    if error is not None and not isinstance(error, dict):
        error = {"message": str(error)}
    doc: dict[str, Any] = {
        "id": run["id"],
        "taskIdentifier": run["task_identifier"],
        "status": run["status"],
        "isSuccess": run["status"] == RunStatus.COMPLETED,
        "attemptCount": run["attempt_count"],
        "tags": list(run["tags"] or []),
        "error": {"type": error.get("type") or error.get("name"),
                  "message": str(error.get("message") or "")[:2000]} if error else None,
        "createdAt": iso(run["created_at"]),
        "startedAt": iso(run["started_at"]),
        "finishedAt": iso(run["finished_at"]),
        "durationMs": run["execution_ms"],
        "replayedFrom": run["replayed_from"],
        "parentId": run["parent_id"],
        "rootId": run["root_id"],
        "batchId": run["batch_id"],
        "scheduleId": run["schedule_id"],
        "idempotencyKey": run["idempotency_key_user"],
    }
    if dashboard_url:
        doc["url"] = f"{dashboard_url.rstrip('/')}/runs/{run['id']}"
    return doc


def render(endpoint: RunWebhook, name: str, run: Mapping[str, Any], dashboard_url: str,
           event: str = "run.finished") -> str:
    """The body posted to ``endpoint`` for ``run``, fixed when recorded (a retry sends the
    same bytes)."""
    doc = run_document(run, dashboard_url)
    if endpoint.format == "slack":
        return json.dumps({"text": slack_text(doc)})
    return json.dumps({"type": event, "endpoint": name,
                       "timestamp": utcnow().isoformat(), "data": {"run": doc}})


def _slack_escape(text: str) -> str:
    # Slack reads <…> as links and mentions and & as an entity: the three it asks to escape
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(doc: Mapping[str, Any]) -> str:
    icon = ":white_check_mark:" if doc["isSuccess"] else (
        ":no_entry_sign:" if doc["status"] == RunStatus.CANCELED else ":red_circle:")
    attempts = doc["attemptCount"]
    task = _slack_escape(doc["taskIdentifier"])
    line = (f"{icon} Run `{doc['id']}` of task `{task}` ended "
            f"*{doc['status']}* after {attempts} attempt{'s' if attempts != 1 else ''}")
    if doc.get("error"):
        kind = _slack_escape(str(doc["error"]["type"] or "Error"))
        line += f": {kind}: {_slack_escape(doc['error']['message'][:300])}"
    if doc.get("url"):
        line += f" <{doc['url']}|open>"
    return line


# ---------------------------------------------------------------------------- delivering
def sign(secret: str, msg_id: str, stamp: int, body: bytes) -> str:
    """Standard Webhooks' ``webhook-signature`` value for ``body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def post(endpoint: RunWebhook, msg_id: str, body: str) -> None:
    """POST one delivery; raises with a short reason unless the answer is a 2xx."""
    data = body.encode()
    headers = {"content-type": "application/json", "user-agent": "buster-jobs-run-webhooks"}
    if endpoint.format == "standard":
        stamp = int(time.time())
        headers.update({"webhook-id": msg_id, "webhook-timestamp": str(stamp)})
        if endpoint.secret is not None:
            headers["webhook-signature"] = sign(endpoint.secret.get_secret_value(), msg_id,
                                                stamp, data)
    request = urllib.request.Request(endpoint.url.get_secret_value(), data=data,
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=endpoint.timeout_seconds) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{type(reason).__name__}: {reason}") from None
    except Exception as exc:  # a malformed answer (http.client.HTTPException …): its text
        # may quote the URL, so only its kind is kept; the attempt still counts
        raise DeliveryError(type(exc).__name__) from None


class DeliveryError(Exception):
    """A POST that did not get a 2xx. Its message never holds the URL."""


def backoff_seconds(attempts: int) -> float:
    """After the ``attempts``-th failure: 5 s, 20 s, 80 s, 320 s, … at most an hour."""
    return float(min(5 * 4 ** (attempts - 1), 3600))


def take_due(store: Any, limit: int, lease_s: float) -> list[dict[str, Any]]:
    """Up to ``limit`` due pending deliveries, each leased to this caller for ``lease_s``
    (its next attempt moved past the lease, so no other sender takes it meanwhile)."""
    d = t.run_webhook_deliveries.c
    now = utcnow()
    with store.engine.begin() as conn:
        rows = conn.execute(
            select(d.id, d.endpoint, d.run_id, d.body, d.attempts)
            .where(d.status == "pending", d.next_attempt_at <= now)
            .order_by(d.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).mappings().all()
        if rows:
            conn.execute(update(t.run_webhook_deliveries)
                         .where(d.id.in_([row["id"] for row in rows]))
                         .values(next_attempt_at=now + timedelta(seconds=lease_s)))
    return [dict(row) for row in rows]


def send_due(store: Any, endpoints: Mapping[str, RunWebhook], limit: int = 20) -> int:
    """Post the due deliveries, ``_POSTERS`` at a time (one slow endpoint does not hold up
    the others' for long); returns how many were delivered."""
    longest = max((e.timeout_seconds for e in endpoints.values()), default=10.0)
    # the lease outlasts the whole batch at its slowest, so no other sender re-posts one
    rounds = -(-limit // _POSTERS)
    due = take_due(store, limit, longest * rounds + _LEASE_EXTRA_S)
    if not due:
        return 0
    with ThreadPoolExecutor(min(_POSTERS, len(due)),
                            thread_name_prefix="buster-run-webhook") as pool:
        return sum(pool.map(lambda row: _deliver(store, endpoints, row), due))


def _deliver(store: Any, endpoints: Mapping[str, RunWebhook], row: Mapping[str, Any]) -> bool:
    endpoint = endpoints.get(row["endpoint"])
    attempts = row["attempts"] + 1
    if endpoint is None:
        _finish(store, row, attempts, failed="endpoint no longer configured")
        return False
    try:
        post(endpoint, f"{row['run_id']}.{row['endpoint']}", row["body"])
    except DeliveryError as exc:
        reason = str(exc)[:_ERROR_CHARS]
        final = attempts >= endpoint.max_attempts
        _finish(store, row, attempts, failed=reason if final else None,
                retry_in=None if final else backoff_seconds(attempts), error=reason)
        (log.error if final else log.warning)(
            "run webhook %s (%s) for run %s: %s (attempt %d of %d%s)",
            row["endpoint"], endpoint.host(), row["run_id"], reason, attempts,
            endpoint.max_attempts, ", giving up" if final else "",
            extra={"action": "run_webhook_failed" if final else "run_webhook_retry",
                   "run_id": row["run_id"], "endpoint": row["endpoint"]})
        return False
    _finish(store, row, attempts)
    return True


def _finish(store: Any, row: Mapping[str, Any], attempts: int, *, failed: str | None = None,
            retry_in: float | None = None, error: str | None = None) -> None:
    d = t.run_webhook_deliveries.c
    now = utcnow()
    values: dict[str, Any] = {"attempts": attempts}
    if failed is not None:
        values.update(status="failed", last_error=failed[:_ERROR_CHARS])
    elif retry_in is not None:
        values.update(next_attempt_at=now + timedelta(seconds=retry_in), last_error=error)
    else:
        values.update(status="delivered", delivered_at=now, last_error=None)
    with store.engine.begin() as conn:
        conn.execute(update(t.run_webhook_deliveries)
                     .where(and_(d.id == row["id"], d.status == "pending"))
                     .values(values))


def deliveries(store: Any, run_id: str) -> Sequence[Mapping[str, Any]]:
    """A run's deliveries (the run page, tests)."""
    d = t.run_webhook_deliveries.c
    with store.engine.connect() as conn:
        return conn.execute(
            select(d.endpoint, d.run_status, d.status, d.attempts, d.last_error,
                   d.created_at, d.delivered_at)
            .where(d.run_id == run_id).order_by(d.endpoint)
        ).mappings().all()


def retry_failed(store: Any, endpoint: str | None = None) -> int:
    """Failed deliveries (of ``endpoint``, or all) back to pending, their attempts counted
    afresh: after an endpoint's outage is fixed. Returns how many."""
    d = t.run_webhook_deliveries.c
    q = update(t.run_webhook_deliveries).where(d.status == "failed")
    if endpoint is not None:
        q = q.where(d.endpoint == endpoint)
    with store.engine.begin() as conn:
        return int(conn.execute(q.values(status="pending", attempts=0,
                                          next_attempt_at=utcnow())).rowcount or 0)


def send_test(endpoint: RunWebhook, name: str, dashboard_url: str = "") -> str:
    """POST a made-up failed run to ``endpoint`` now, as a delivery would be (raises
    DeliveryError); the body's ``type`` is ``run.test``. Returns the body sent."""
    now = utcnow()
    run = {"id": "run_test", "task_identifier": "buster-jobs-test", "status": "FAILED",
           "attempt_count": 1, "tags": [], "created_at": now, "started_at": now,
           "finished_at": now, "execution_ms": 0, "replayed_from": None, "parent_id": None,
           "root_id": None, "batch_id": None, "schedule_id": None,
           "idempotency_key_user": None,
           "error": {"type": "TestError", "message": "a test of this endpoint"}}
    body = render(endpoint, name, run, dashboard_url, event="run.test")
    post(endpoint, f"run_test.{name}.{int(time.time())}", body)
    return body


def describe(store: Any, endpoints: Mapping[str, RunWebhook]) -> list[dict[str, Any]]:
    """Each endpoint as ops may see it — its URL's host only, never the URL or secret —
    with its deliveries by status; then the deliveries of endpoints no longer configured
    (``configured`` False). The CLI's ``run-webhooks list`` and the Tasks page."""
    counts: dict[str, dict[str, int]] = {}
    for name, status, n in delivery_counts(store):
        counts.setdefault(name, {})[status] = n
    out: list[dict[str, Any]] = [
        {**e.public(name), "configured": True, "deliveries": counts.pop(name, {})}
        for name, e in sorted(endpoints.items())]
    out += [{"name": name, "configured": False, "deliveries": left}
            for name, left in sorted(counts.items())]
    return out


def delivery_counts(store: Any) -> list[tuple[str, str, int]]:
    """(endpoint, delivery status, count) over the deliveries kept (``/metrics``)."""
    d = t.run_webhook_deliveries.c
    with store.engine.connect() as conn:
        return [(row[0], row[1], int(row[2])) for row in conn.execute(
            select(d.endpoint, d.status, func.count()).group_by(d.endpoint, d.status)
            .order_by(d.endpoint, d.status))]


class Sender(PollingThread):
    """The thread that posts deliveries, beside a timer loop: a slow endpoint holds up
    this thread, never the timer's delays, waits and leases."""

    thread_name = "buster-run-webhooks"
    error_message = "run webhook sender failed"
    error_action = "run_webhook_error"

    def __init__(self, runtime: Any, interval_s: float):
        super().__init__(interval_s)
        self.runtime = runtime

    def step(self) -> bool:
        from .run_webhook_endpoints import current

        # the setting's endpoints and those added at runtime, as of now
        endpoints = current(self.runtime)
        # after a delivery more may be due: look again at once
        return bool(endpoints) and send_due(self.runtime.store, endpoints) > 0
