"""Run, batch and schedule objects in the exact shapes the SDK's zod schemas accept.

Optional fields are omitted, never ``null`` (the SDK rejects ``null`` for ``.optional()``
fields, and turns a ``null`` date into 1970)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runtime import secrets
from runtime.statuses import RunStatus

_TRIGGER_FUNCTION = {
    "trigger_and_wait": "triggerAndWait",
    "batch_trigger": "batchTrigger",
    "batch_trigger_and_wait": "batchTriggerAndWait",
}
_FAILED = {"FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"}
# EXPIRED and TIMED_OUT count as completed (the reference server leaves them out, so
# runs.poll never returns for them; the SDK only reads these flags)
_COMPLETED = _FAILED | {"COMPLETED", "CANCELED"}


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def flags(status: str) -> dict[str, bool]:
    return {
        "isQueued": status in ("QUEUED", "DELAYED", "PENDING_VERSION"),
        "isExecuting": status in ("EXECUTING", "DEQUEUED"),
        "isWaiting": status == "WAITING",
        "isCompleted": status in _COMPLETED,
        "isSuccess": status == "COMPLETED",
        "isFailed": status in _FAILED,
        "isCancelled": status == "CANCELED",
        "isTest": False,
    }


def api_error(error: Any) -> dict[str, Any] | None:
    if not error:
        return None
    if not isinstance(error, dict):
        return {"message": str(error)}
    out: dict[str, Any] = {"message": str(error.get("message") or error.get("type") or "error")}
    _put(out, "name", error.get("type"))
    _put(out, "stackTrace", error.get("stack"))
    return out


def common(row: Any) -> dict[str, Any]:
    """The fields list items and retrieved runs share."""
    status = RunStatus(row["status"]).value
    out: dict[str, Any] = {
        "id": row["id"],
        "status": status,
        "taskIdentifier": row["task_identifier"],
        **flags(status),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "tags": list(row["tags"] or []),
        "costInCents": 0,
        "baseCostInCents": 0,
        "durationMs": int(row["execution_ms"] or 0),
        "attemptCount": int(row["attempt_count"] or 0),
    }
    _put(out, "idempotencyKey", row.get("idempotency_key_user"))
    _put(out, "version", row.get("task_version"))
    _put(out, "batchId", row.get("batch_id"))
    _put(out, "startedAt", iso(row.get("started_at")))
    _put(out, "finishedAt", iso(row.get("finished_at")))
    if status == "DELAYED":
        _put(out, "delayedUntil", iso(row.get("delay_until")))
    if status == "EXPIRED":
        _put(out, "expiredAt", iso(row.get("finished_at")))
    if row.get("ttl_seconds"):
        out["ttl"] = f"{int(row['ttl_seconds'])}s"
    if "metadata" in row and row["metadata"] is not None:
        out["metadata"] = secrets.mask(row["metadata"])
    _put(out, "error", api_error(row.get("error")))
    return out


def list_item(row: Any) -> dict[str, Any]:
    return {**common(row), "env": {"id": "env_default", "name": "production"}}


def run_object(row: Any, *, parent: Any = None, root: Any = None, children: Any = ()) -> Any:
    out = common(row)
    out["depth"] = int(row["depth"] or 0)
    out["triggerFunction"] = _TRIGGER_FUNCTION.get(row.get("trigger_function") or "", "trigger")
    out["payload"] = secrets.mask(row["payload"])
    out["output"] = secrets.mask(row["output"])
    related: dict[str, Any] = {}
    if root is not None:
        related["root"] = {**common(root), "depth": root["depth"], "triggerFunction": "trigger"}
    if parent is not None:
        related["parent"] = {
            **common(parent),
            "depth": parent["depth"],
            "triggerFunction": "trigger",
        }
    if children:
        related["children"] = [
            {**common(c), "depth": c["depth"], "triggerFunction": "trigger"} for c in children
        ]
    out["relatedRuns"] = related
    if row.get("schedule_id"):
        out["schedule"] = {
            "id": row["schedule_id"],
            "generator": {"type": "CRON", "expression": "", "description": ""},
        }
    return out


def queue_object(q: Any) -> dict[str, Any]:
    """A task queue as Trigger.dev's QueueItem; ``concurrencyLimit`` null means unlimited
    (there is no environment limit here). ``totalConcurrency`` is ours: the cap over all the
    task's concurrency keys (``total_concurrency_limit``), from code and ops' override."""
    return {
        "id": q.id,
        "name": q.name,
        "type": q.type,
        "tasks": list(q.tasks),  # ours: the tasks whose runs take its slots
        "running": q.running,
        "queued": q.queued,
        "paused": q.paused,
        "concurrencyLimit": q.concurrency_limit,
        "concurrency": {
            "current": q.concurrency_limit,
            "base": q.base,
            "override": q.override,
            "overriddenAt": iso(q.overridden_at),
            "overriddenBy": q.overridden_by,
        },
        "totalConcurrency": {
            "current": q.total_concurrency_limit,
            "base": q.total,
            "override": q.total_override,
        },
    }


def schedule_object(s: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "type": s.type,
        "task": s.task,
        "active": bool(s.active),
        "generator": {"type": "CRON", "expression": s.cron, "description": describe_cron(s.cron)},
        "timezone": s.timezone,
        "environments": [{"id": "env_default", "type": "PRODUCTION"}],
        "deduplicationKey": s.deduplication_key,
        "externalId": s.external_id,
        "nextRun": iso(s.next_run),
    }
    return out


def describe_cron(expr: str) -> str:
    """A short human description for the common shapes; the expression otherwise."""
    parts = expr.split()
    if len(parts) != 5:
        return expr
    minute, hour, dom, month, dow = parts
    if parts == ["*"] * 5:
        return "Every minute"
    if minute.isdigit() and hour == "*" and dom == month == dow == "*":
        return f"Every hour at minute {minute}"
    if minute.isdigit() and hour.isdigit() and dom == month == dow == "*":
        return f"Every day at {int(hour):02d}:{int(minute):02d}"
    return expr


def camel(doc: dict[str, Any]) -> dict[str, Any]:
    """A runtime object's ``to_dict`` keys as the API spells them: ``run_ids`` → ``runIds``."""
    return {k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]): v
            for k, v in doc.items()}
