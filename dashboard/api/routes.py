"""The API's route table — one list, also the source of the OpenAPI document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import (
    bulk_actions,
    idempotency,
    queues,
    run_webhooks,
    runs,
    schedules,
    triggering,
    waitpoints,
)


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    handler: Any
    summary: str
    ok: int = 200
    response: str = "Object"
    body: str | None = None
    errors: tuple[int, ...] = (400, 401, 404, 422)


OPS = [
    Op(
        "POST",
        "/api/v1/tasks/{task_id:path}/trigger",
        triggering.trigger_task,
        "Trigger a run of a task by id",
        body="TriggerRequest",
        response="TriggerResponse",
    ),
    Op(
        "POST",
        "/api/v3/batches",
        triggering.create_batch,
        "Batch trigger, phase 1: create a batch of runCount runs",
        ok=202,
        body="CreateBatchRequest",
        response="CreateBatchResponse",
    ),
    Op(
        "POST",
        "/api/v3/batches/{batch_id}/items",
        triggering.batch_items,
        "Batch trigger, phase 2: stream the items as NDJSON (deduped by index)",
        body="BatchItemNDJSON",
        response="BatchItemsResponse",
        errors=(400, 401, 404, 415, 422),
    ),
    Op(
        "GET",
        "/api/v2/batches/{batch_id}",
        triggering.retrieve_batch,
        "Retrieve a batch and its run ids",
        response="Batch",
    ),
    Op("GET", "/api/v3/runs/{run_id}", runs.retrieve_run, "Retrieve a run", response="Run"),
    Op(
        "GET",
        "/api/v1/runs",
        runs.list_runs,
        "List runs (filter[status|taskIdentifier|tag|batch|schedule|idempotencyKey|createdAt]"
        ", page[size], page[after])",
        response="RunList",
    ),
    Op(
        "POST",
        "/api/v1/runs/bulk",
        runs.bulk_runs,
        "Cancel or replay every run a filter matches (at most maxRuns; next continues)",
        body="BulkRunsRequest",
        response="BulkRunsResponse",
        errors=(400, 401),
    ),
    Op(
        "POST",
        "/api/v2/runs/{run_id}/cancel",
        runs.cancel_run,
        "Cancel a run",
        response="IdResponse",
    ),
    Op(
        "POST",
        "/api/v1/runs/{run_id}/replay",
        runs.replay_run,
        "Replay a run (optionally with overrides)",
        body="ReplayRequest",
        response="IdResponse",
    ),
    Op(
        "POST",
        "/api/v1/runs/{run_id}/reschedule",
        runs.reschedule_run,
        "Reschedule a DELAYED run",
        body="RescheduleRequest",
        response="Run",
    ),
    Op(
        "POST",
        "/api/v1/waitpoints/tokens",
        waitpoints.create_wait_token,
        "Create a wait token",
        body="CreateTokenRequest",
        response="CreateTokenResponse",
    ),
    Op(
        "GET",
        "/api/v1/waitpoints/tokens/{token_id}",
        waitpoints.retrieve_wait_token,
        "Retrieve a wait token",
        response="WaitToken",
    ),
    Op(
        "POST",
        "/api/v1/waitpoints/tokens/{token_id}/complete",
        waitpoints.complete_wait_token,
        "Complete a wait token; the waiting run resumes",
        body="CompleteTokenRequest",
        response="SuccessResponse",
    ),
    Op(
        "POST",
        "/api/v1/schedules",
        schedules.create_schedule,
        "Create a schedule (same deduplicationKey updates it)",
        body="CreateScheduleRequest",
        response="Schedule",
    ),
    Op(
        "GET",
        "/api/v1/schedules",
        schedules.list_schedules,
        "List schedules (page, perPage)",
        response="ScheduleList",
    ),
    Op(
        "GET",
        "/api/v1/schedules/{schedule_id}",
        schedules.retrieve_schedule,
        "Retrieve a schedule",
        response="Schedule",
    ),
    Op(
        "PUT",
        "/api/v1/schedules/{schedule_id}",
        schedules.update_schedule,
        "Update a schedule",
        body="UpdateScheduleRequest",
        response="Schedule",
    ),
    Op(
        "DELETE",
        "/api/v1/schedules/{schedule_id}",
        schedules.delete_schedule,
        "Delete a schedule",
        response="IdResponse",
    ),
    Op(
        "POST",
        "/api/v1/schedules/{schedule_id}/activate",
        schedules.activate_schedule,
        "Activate a schedule",
        response="Schedule",
    ),
    Op(
        "POST",
        "/api/v1/schedules/{schedule_id}/deactivate",
        schedules.deactivate_schedule,
        "Deactivate a schedule",
        response="Schedule",
    ),
    Op(
        "POST",
        "/api/v1/bulk-actions",
        bulk_actions.create_bulk_action,
        "Start a bulk cancel or replay in the background (a filter, or runIds)",
        ok=202,
        body="CreateBulkActionRequest",
        response="BulkAction",
        errors=(400, 401),
    ),
    Op("GET", "/api/v1/bulk-actions", bulk_actions.list_bulk_actions,
       "List bulk actions, newest first", response="BulkActionList", errors=(401,)),
    Op("GET", "/api/v1/bulk-actions/{bulk_id}", bulk_actions.retrieve_bulk_action,
       "Retrieve a bulk action and its progress", response="BulkAction"),
    Op("POST", "/api/v1/bulk-actions/{bulk_id}/abort", bulk_actions.abort_bulk_action,
       "Abort a bulk action (the page in hand finishes)", response="BulkAction"),
    Op(
        "GET",
        "/api/v1/run-webhooks",
        run_webhooks.list_run_webhooks,
        "List the run webhook endpoints in force (their URLs' hosts, never URL or secret)",
        response="RunWebhookList",
        errors=(401,),
    ),
    Op(
        "POST",
        "/api/v1/run-webhooks",
        run_webhooks.create_run_webhook,
        "Add a run webhook endpoint at runtime (every process posts to it within seconds)",
        ok=201,
        body="CreateRunWebhookRequest",
        response="RunWebhook",
        errors=(400, 401, 409, 422),
    ),
    Op(
        "DELETE",
        "/api/v1/run-webhooks/{name}",
        run_webhooks.delete_run_webhook,
        "Remove a run webhook endpoint added at runtime",
        response="RunWebhookRemoved",
        errors=(401, 404),
    ),
    Op("GET", "/api/v1/queues", queues.list_queues, "List task queues", response="QueueList"),
    Op(
        "GET",
        "/api/v1/queues/{queue}",
        queues.retrieve_queue,
        "Retrieve a task queue (by id, or by task id with ?type=task)",
        response="Queue",
    ),
    Op(
        "POST",
        "/api/v1/queues/{queue}/pause",
        queues.pause_queue,
        "Pause (no new run starts) or resume a task queue",
        body="PauseQueueRequest",
        response="Queue",
    ),
    Op(
        "POST",
        "/api/v1/queues/{queue}/concurrency/override",
        queues.override_concurrency,
        "Override a task queue's concurrency limit until reset",
        body="OverrideConcurrencyRequest",
        response="Queue",
    ),
    Op(
        "POST",
        "/api/v1/queues/{queue}/concurrency/reset",
        queues.reset_concurrency,
        "Reset a task queue's concurrency limit to the task's code",
        body="QueueTypeRequest",
        response="Queue",
    ),
    Op("GET", "/api/v1/timezones", schedules.timezones, "IANA timezones", response="Object"),
    Op(
        "POST",
        "/api/v1/idempotencyKeys/{key}/reset",
        idempotency.reset_key,
        "Reset an idempotency key",
        body="ResetKeyRequest",
        response="IdResponse",
    ),
]
