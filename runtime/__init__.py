"""buster-jobs runtime: Trigger.dev v4's task SDK in Python, on Dramatiq, RabbitMQ and Postgres.

    from runtime import task, tasks, batch, runs, queue, queues, wait, logger, metadata
    from runtime import run_locals, tags

Nothing connects at import time: the first trigger, or a worker's boot, builds the runtime
from ``BUSTER_*`` settings (``runtime.configure`` chooses explicitly).
"""

from __future__ import annotations

from .batch import batch
from .bootstrap import configure, get_runtime
from .errors import AbortTaskRunError
from .idempotency import idempotency_keys
from .logger import logger
from .metadata import metadata
from .queues import Queue, queues
from .result import Result
from .retry import RetryOptions
from .run_locals import LocalKey, run_locals
from .runs import Run, runs
from .schedules import schedules
from .shared_queues import SharedQueue, queue
from .statuses import RunStatus
from .tags import tags
from .task import Task, schema_task, task
from .trigger import tasks
from .waits import wait

__all__ = [
    "AbortTaskRunError",
    "Result",
    "RetryOptions",
    "Run",
    "RunStatus",
    "Task",
    "batch",
    "configure",
    "get_runtime",
    "idempotency_keys",
    "LocalKey",
    "logger",
    "metadata",
    "Queue",
    "queue",
    "queues",
    "runs",
    "run_locals",
    "schedules",
    "schema_task",
    "SharedQueue",
    "task",
    "tags",
    "tasks",
    "wait",
]
