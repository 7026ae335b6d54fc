"""The OpenAPI 3.1 document of the whole HTTP API, built from the route table."""

from __future__ import annotations

import re
from typing import Any

from .routes import OPS

_STR = {"type": "string"}
_DATE = {"type": "string", "format": "date-time"}
_BOOL = {"type": "boolean"}
_NUM = {"type": "number"}
_STATUS = {
    "type": "string",
    "enum": [
        "PENDING_VERSION",
        "DELAYED",
        "QUEUED",
        "DEQUEUED",
        "EXECUTING",
        "WAITING",
        "COMPLETED",
        "CANCELED",
        "FAILED",
        "CRASHED",
        "SYSTEM_FAILURE",
        "EXPIRED",
        "TIMED_OUT",
    ],
}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = required
    return out


_RUN_COMMON = {
    "id": _STR,
    "status": _STATUS,
    "taskIdentifier": _STR,
    **{
        k: _BOOL
        for k in (
            "isQueued",
            "isExecuting",
            "isWaiting",
            "isCompleted",
            "isSuccess",
            "isFailed",
            "isCancelled",
            "isTest",
        )
    },
    "createdAt": _DATE,
    "updatedAt": _DATE,
    "startedAt": _DATE,
    "finishedAt": _DATE,
    "tags": {"type": "array", "items": _STR},
    "costInCents": _NUM,
    "baseCostInCents": _NUM,
    "durationMs": _NUM,
    "attemptCount": _NUM,
    "idempotencyKey": _STR,
    "batchId": _STR,
    "metadata": {"type": "object"},
    "error": _obj({"message": _STR, "name": _STR, "stackTrace": _STR}, ["message"]),
}
_OPTIONS = _obj(
    {
        "payloadType": _STR,
        "payloadSize": _NUM,
        "queue": _obj({"name": _STR}),
        "idempotencyKey": _STR,
        "idempotencyKeyTTL": _STR,
        "delay": _STR,
        "ttl": _STR,
        "tags": {"type": "array", "items": _STR},
        "maxAttempts": _NUM,
        "metadata": {"type": "object"},
        "maxDuration": _NUM,
        "machine": _STR,
        "concurrencyKey": _STR,
    }
)
# a single trigger's (batch items ignore it)
_TRIGGER_OPTIONS = _obj({
    **_OPTIONS["properties"],
    "debounce": _obj({"key": _STR, "delay": _STR,
                      "mode": {"type": "string", "enum": ["leading", "trailing"]},
                      "maxDelay": _STR}, ["key", "delay"]),
})

SCHEMAS: dict[str, Any] = {
    "Object": {"type": "object"},
    "Error": _obj({"error": _STR}, ["error"]),
    "TriggerRequest": _obj(
        {"payload": {"description": "SuperJSON string, text or JSON"},
         "options": _TRIGGER_OPTIONS}
    ),
    "TriggerResponse": _obj({"id": _STR, "isCached": _BOOL}, ["id"]),
    "CreateBatchRequest": _obj(
        {"runCount": _NUM, "taskIdentifiers": {"type": "array"}, "idempotencyKey": _STR},
        ["runCount"],
    ),
    "CreateBatchResponse": _obj(
        {"id": _STR, "runCount": _NUM, "isCached": _BOOL}, ["id", "runCount", "isCached"]
    ),
    "BatchItemNDJSON": _obj(
        {"index": _NUM, "task": _STR, "payload": {}, "options": _OPTIONS}, ["index", "task"]
    ),
    "BatchItemsResponse": _obj(
        {"id": _STR, "itemsAccepted": _NUM, "itemsDeduplicated": _NUM, "sealed": _BOOL},
        ["id", "itemsAccepted", "itemsDeduplicated", "sealed"],
    ),
    "Batch": _obj(
        {
            "id": _STR,
            "status": _STR,
            "createdAt": _DATE,
            "updatedAt": _DATE,
            "runCount": _NUM,
            "runs": {"type": "array", "items": _STR},
            "processing": {"type": "object"},
        }
    ),
    "Run": _obj(
        {
            **_RUN_COMMON,
            "depth": _NUM,
            "triggerFunction": _STR,
            "payload": {},
            "output": {},
            "relatedRuns": {"type": "object"},
        },
        ["id", "status", "taskIdentifier", "createdAt", "updatedAt", "tags", "relatedRuns"],
    ),
    "RunList": _obj(
        {
            "data": {"type": "array", "items": _obj({**_RUN_COMMON, "env": {}})},
            "pagination": _obj({"next": _STR, "previous": _STR}),
        },
        ["data", "pagination"],
    ),
    "IdResponse": _obj({"id": _STR}, ["id"]),
    "ReplayRequest": _obj({"payload": {}, "tags": {"type": "array"}, "metadata": {}}),
    "RescheduleRequest": _obj({"delay": _STR}, ["delay"]),
    "BulkRunsRequest": _obj(
        {
            "action": {"type": "string", "enum": ["cancel", "replay"]},
            "filter": _obj({
                "status": {}, "taskIdentifier": {}, "tag": {}, "batch": _STR,
                "schedule": _STR, "idempotencyKey": _STR,
                "createdAt": _obj({"from": {}, "to": {}, "period": _STR}),
            }),
            "runIds": {"type": "array", "items": _STR},
            "maxRuns": {"type": "integer", "minimum": 1, "maximum": 10000},
            "dryRun": _BOOL,
            "after": _STR,
        },
        ["action"],
    ),
    "BulkRunsResponse": _obj(
        {
            "action": _STR, "count": {"type": "integer"}, "runIds": {"type": "array"},
            "truncated": _BOOL, "dryRun": _BOOL, "next": {"type": ["string", "null"]},
            "notFound": {"type": "array", "items": _STR},
        },
        ["action", "count", "runIds", "truncated", "dryRun", "next", "notFound"],
    ),
    "CreateTokenRequest": _obj(
        {
            "timeout": _STR,
            "idempotencyKey": _STR,
            "idempotencyKeyTTL": _STR,
            "tags": {"type": "array"},
        }
    ),
    "CreateTokenResponse": _obj(
        {"id": _STR, "isCached": _BOOL, "url": _STR}, ["id", "isCached", "url"]
    ),
    "WaitToken": _obj(
        {
            "id": _STR,
            "url": _STR,
            "status": _STR,
            "tags": {"type": "array"},
            "createdAt": _DATE,
            "output": _STR,
            "outputType": _STR,
        }
    ),
    "CompleteTokenRequest": _obj({"data": {}}),
    "SuccessResponse": _obj({"success": {"const": True}}, ["success"]),
    "CreateScheduleRequest": _obj(
        {
            "task": _STR,
            "cron": _STR,
            "deduplicationKey": _STR,
            "externalId": _STR,
            "timezone": _STR,
        },
        ["task", "cron", "deduplicationKey"],
    ),
    "UpdateScheduleRequest": _obj(
        {"task": _STR, "cron": _STR, "externalId": _STR, "timezone": _STR}, ["task", "cron"]
    ),
    "Schedule": _obj(
        {
            "id": _STR,
            "type": _STR,
            "task": _STR,
            "active": _BOOL,
            "generator": _obj({"type": _STR, "expression": _STR, "description": _STR}),
            "timezone": _STR,
            "nextRun": _DATE,
            "externalId": _STR,
            "deduplicationKey": _STR,
            "environments": {"type": "array"},
        }
    ),
    "ScheduleList": _obj(
        {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
            "pagination": {"type": "object"},
        }
    ),
    "ResetKeyRequest": _obj({"taskIdentifier": _STR}, ["taskIdentifier"]),
    "Queue": _obj(
        {
            "id": _STR,
            "name": _STR,
            "type": {"type": "string", "enum": ["task", "custom"]},
            "tasks": {"type": "array", "items": _STR},
            "running": _NUM,
            "queued": _NUM,
            "paused": _BOOL,
            "concurrencyLimit": {"type": ["integer", "null"]},
            "concurrency": _obj(
                {
                    "current": {"type": ["integer", "null"]},
                    "base": {"type": ["integer", "null"]},
                    "override": {"type": ["integer", "null"]},
                    "overriddenAt": {"type": ["string", "null"], "format": "date-time"},
                    "overriddenBy": {"type": ["string", "null"]},
                }
            ),
            "totalConcurrency": _obj(
                {
                    "current": {"type": ["integer", "null"]},
                    "base": {"type": ["integer", "null"]},
                    "override": {"type": ["integer", "null"]},
                }
            ),
        }
    ),
    "BulkAction": _obj(
        {
            "id": _STR,
            "action": {"type": "string", "enum": ["cancel", "replay"]},
            "name": {"type": ["string", "null"]},
            "status": {"type": "string", "enum": ["PENDING", "COMPLETED", "ABORTED"]},
            "success": _NUM,
            "failure": _NUM,
            "filter": {"type": ["object", "null"]},
            "runIds": {"type": ["array", "null"], "items": _STR},
            "createdBy": {"type": ["string", "null"]},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "completedAt": {"type": ["string", "null"], "format": "date-time"},
        }
    ),
    "BulkActionList": _obj(
        {"data": {"type": "array", "items": {"$ref": "#/components/schemas/BulkAction"}}}
    ),
    "CreateBulkActionRequest": _obj(
        {
            "action": {"type": "string", "enum": ["cancel", "replay"]},
            "filter": {"type": "object"},
            "runIds": {"type": "array", "items": _STR},
            "name": _STR,
        },
        ["action"],
    ),
    "RunWebhook": _obj(
        {
            "name": _STR,
            "source": {"type": "string", "enum": ["settings", "stored"]},
            "host": _STR,
            "format": {"type": "string", "enum": ["standard", "slack"]},
            "signed": _BOOL,
            "statuses": {"type": "array", "items": _STR},
            "tasks": {"type": ["array", "null"], "items": _STR},
            "tags": {"type": ["array", "null"], "items": _STR},
            "timeoutSeconds": _NUM,
            "maxAttempts": _NUM,
        }
    ),
    "RunWebhookList": _obj(
        {"data": {"type": "array", "items": {"$ref": "#/components/schemas/RunWebhook"}}}
    ),
    "CreateRunWebhookRequest": _obj(
        {
            "name": _STR,
            "url": {"type": "string", "format": "uri", "writeOnly": True},
            "format": {"type": "string", "enum": ["standard", "slack"]},
            "secret": {"type": "string", "writeOnly": True},
            "statuses": {"type": "array", "items": _STR},
            "tasks": {"type": "array", "items": _STR},
            "tags": {"type": "array", "items": _STR},
            "timeoutSeconds": _NUM,
            "maxAttempts": _NUM,
            "replace": _BOOL,
        },
        ["name", "url"],
    ),
    "RunWebhookRemoved": _obj({"name": _STR, "removed": _BOOL}),
    "QueueList": _obj(
        {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Queue"}},
            "pagination": {"type": "object"},
        }
    ),
    "QueueTypeRequest": _obj({"type": {"type": "string", "enum": ["id", "task"]}}),
    "PauseQueueRequest": _obj(
        {
            "type": {"type": "string", "enum": ["id", "task"]},
            "action": {"type": "string", "enum": ["pause", "resume"]},
        },
        ["action"],
    ),
    "OverrideConcurrencyRequest": _obj(
        {
            "type": {"type": "string", "enum": ["id", "task"]},
            "concurrencyLimit": {"type": "integer", "minimum": 0, "maximum": 100000},
        },
        ["concurrencyLimit"],
    ),
}

_ERRORS = {
    400: "Malformed JSON or invalid request body",
    401: "Invalid or missing API key",
    404: "Unknown task, queue, run, batch, token or schedule",
    409: "A request with the same idempotency key is in progress (retry)",
    413: "Request body larger than the limit",
    415: "Wrong content type",
    422: "Valid JSON that cannot be acted on (bad option, bad cron, invalid item)",
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for op in OPS:
        path = re.sub(r"\{(\w+):path\}", r"{\1}", op.path)
        params = [
            {"name": n, "in": "path", "required": True, "schema": _STR}
            for n in re.findall(r"\{(\w+)\}", path)
        ]
        responses: dict[str, Any] = {
            str(op.ok): {
                "description": "OK",
                "content": {"application/json": {"schema": _ref(op.response)}},
            }
        }
        for code in (*op.errors, 413):
            responses[str(code)] = {
                "description": _ERRORS[code],
                "content": {"application/json": {"schema": _ref("Error")}},
            }
        spec: dict[str, Any] = {
            "summary": op.summary,
            "operationId": op.handler.__name__,
            "parameters": params,
            "responses": responses,
        }
        if op.body:
            ctype = "application/x-ndjson" if op.body == "BatchItemNDJSON" else "application/json"
            spec["requestBody"] = {"content": {ctype: {"schema": _ref(op.body)}}}
        paths.setdefault(path, {})[op.method.lower()] = spec
    paths["/api/v1/runs/{run_id}/stream"] = {
        "get": {
            "summary": "Live run updates as Server-Sent Events (event: run, end)",
            "parameters": [{"name": "run_id", "in": "path", "required": True, "schema": _STR}],
            "responses": {"200": {"description": "text/event-stream"}},
        }
    }
    paths["/api/v1/webhooks/{name}"] = {
        "post": {
            "summary": "Incoming webhook: trigger the endpoint's task (authenticated by the "
            "sender's signature: GitHub, Stripe, Standard Webhooks or an HMAC of the body)",
            "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STR}],
            "requestBody": {"content": {"application/json": {"schema": {}}}},
            "responses": {
                "200": {"description": "OK",
                        "content": {"application/json": {"schema": _ref("TriggerResponse")}}},
                **{str(code): {"description": _ERRORS[code],
                               "content": {"application/json": {"schema": _ref("Error")}}}
                   for code in (400, 401, 404, 413)},
            },
        }
    }
    for path, summary in (
        ("/healthz", "Process is up"),
        ("/readyz", "Store is reachable"),
        ("/metrics", "Prometheus metrics"),
    ):
        paths[path] = {
            "get": {"summary": summary, "security": [], "responses": {"200": {"description": "OK"}}}
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "buster-jobs API",
            "version": "1",
            "description": "Trigger.dev v4-compatible HTTP API: point @trigger.dev/sdk's "
            'TRIGGER_API_URL here. Errors are {"error": message}.',
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
