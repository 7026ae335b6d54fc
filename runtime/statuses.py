"""Run statuses: exactly Trigger.dev v4's API statuses, so its SDK and habits read ours."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    PENDING_VERSION = "PENDING_VERSION"
    DELAYED = "DELAYED"
    QUEUED = "QUEUED"
    DEQUEUED = "DEQUEUED"
    EXECUTING = "EXECUTING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    SYSTEM_FAILURE = "SYSTEM_FAILURE"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.CRASHED,
        RunStatus.SYSTEM_FAILURE,
        RunStatus.CANCELED,
        RunStatus.EXPIRED,
        RunStatus.TIMED_OUT,
    }
)
FAILED_STATUSES = frozenset(FINAL_STATUSES - {RunStatus.COMPLETED, RunStatus.CANCELED})
#: A run in one of these final states releases its idempotency key (Trigger.dev v4 rule).
KEY_RELEASING_STATUSES = frozenset(
    {
        RunStatus.FAILED,
        RunStatus.CRASHED,
        RunStatus.SYSTEM_FAILURE,
        RunStatus.TIMED_OUT,
        RunStatus.EXPIRED,
    }
)
CANCELABLE_STATUSES = frozenset(set(RunStatus) - FINAL_STATUSES)
