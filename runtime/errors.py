"""The runtime's error tree.

    BusterError
    ├── TaskNotFoundError          unknown task id where one must exist
    ├── RunNotFoundError
    ├── InvalidTriggerOptionsError bad tags, delay, ttl, batch size, payload size …
    ├── PayloadValidationError     schema_task payload invalid (never retried)
    ├── MetadataTooLargeError
    ├── UnstorableValueError       JSON the store cannot hold (a NUL, a lone surrogate)
    ├── OutputTooLargeError        an output, step result or token's data over the limit
    ├── AbortTaskRunError          raised by task code: fail now, no retry
    ├── WaitError
    │   ├── ConcurrentWaitError    two waits at once in one run (never retried)
    │   ├── NonDeterminismError    replay diverged from the record (never retried)
    │   └── NotInRunError          a wait outside a task run
    ├── SubtaskUnwrapError         Result.unwrap() of a failed child
    └── TokenNotFoundError

Interrupts raised inside a running attempt derive from BaseException so that a task's own
``except Exception`` cannot swallow them (like KeyboardInterrupt).
"""

from __future__ import annotations

from typing import Any


class BusterError(Exception):
    code = "BUSTER_ERROR"


class TaskNotFoundError(BusterError):
    code = "TASK_NOT_FOUND"


class RunNotFoundError(BusterError):
    code = "RUN_NOT_FOUND"


class InvalidTriggerOptionsError(BusterError, ValueError):
    code = "INVALID_OPTIONS"


class SharedQueueMemberError(BusterError, ValueError):
    """Ops named a task to hold its queue, but the task is in a shared queue: holding that
    would hold the other tasks in it too, so the shared queue must be named."""

    code = "TASK_IN_SHARED_QUEUE"


class PayloadValidationError(BusterError, ValueError):
    """A schema_task payload failed validation; ``errors`` lists fields and messages."""

    code = "TASK_PAYLOAD_PARSED_ERROR"

    def __init__(self, task_id: str, errors: list[dict[str, Any]]):
        self.task_id = task_id
        self.errors = errors
        fields = "; ".join(
            f"{'.'.join(map(str, e.get('loc', ()))) or '(root)'}: {e.get('msg')}" for e in errors
        )
        super().__init__(f"invalid payload for task {task_id!r}: {fields}")


class OutputValidationError(BusterError, ValueError):
    code = "TASK_OUTPUT_ERROR"


class MetadataTooLargeError(BusterError, ValueError):
    code = "METADATA_TOO_LARGE"


class UnstorableValueError(BusterError, ValueError):
    """A value the run store cannot hold (a NUL character, which Postgres refuses in JSON
    and text, or a lone surrogate); the message names where in the value it is."""

    code = "UNSTORABLE_VALUE"


class OutputTooLargeError(BusterError, ValueError):
    """A run's output, a ``wait.step`` result or a wait token's data larger than
    ``max_output_bytes`` (10 MB, Trigger.dev's output limit). Never retried: the next
    attempt would most likely make the same value."""

    code = "OUTPUT_TOO_LARGE"


class AbortTaskRunError(BusterError):
    """Raise from a task to fail the run at once, without retries."""

    code = "ABORT_TASK_RUN"


class WaitError(BusterError):
    code = "WAIT_ERROR"


class ConcurrentWaitError(WaitError):
    code = "TASK_DID_CONCURRENT_WAIT"


class NonDeterminismError(WaitError):
    code = "NON_DETERMINISTIC_REPLAY"


class NotInRunError(WaitError):
    code = "NOT_IN_RUN"


class TokenNotFoundError(BusterError):
    code = "TOKEN_NOT_FOUND"


class SubtaskUnwrapError(BusterError):
    """``Result.unwrap()`` on a child run that did not succeed."""

    code = "SUBTASK_UNWRAP_ERROR"

    def __init__(self, run_id: str, task_id: str, error: Any):
        self.run_id = run_id
        self.task_id = task_id
        self.error = error
        msg = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"child run {run_id} of task {task_id!r} failed: {msg}")


class RunInterrupt(BaseException):  # noqa: N818 - an interrupt, not an error
    """Base of the interrupts the runtime raises inside a running attempt."""


class RunCanceled(RunInterrupt):
    pass


class MaxDurationExceeded(RunInterrupt):
    pass


class Suspend(RunInterrupt):
    """Raised by a long wait: the attempt stops here and resumes by replay."""

    def __init__(self, waitpoint_id: str, wait: dict[str, Any] | None = None):
        super().__init__(waitpoint_id)
        self.waitpoint_id = waitpoint_id
        #: what the run waits for, as ``on_wait`` hooks receive it
        self.wait = {"waitpoint_id": waitpoint_id, **(wait or {})}


class WorkerShutdown(RunInterrupt):
    pass
