"""The Dramatiq middleware that turns messages into runs.

before_process_message claims the run (one conditional UPDATE); a message whose claim
matches nothing — canceled, already running, duplicate delivery — is acked and dropped, so a
run starts at most once per attempt however often RabbitMQ delivers. A message that is not
ours (bad shape, unknown run id) is dead-lettered and logged. after_process_message writes
the attempt's outcome in one transaction.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

from .broker import ACTOR_NAME
from .durations import utcnow
from .executor import Executor, Outcome
from .statuses import RunStatus
from .task import get_task

log = logging.getLogger("buster.worker")


class MalformedMessageError(Exception):
    code = "MALFORMED_MESSAGE"


class RunLifecycle(Middleware):
    def __init__(self, runtime: Any, executor: Executor):
        self.runtime = runtime
        self.executor = executor
        self._local = threading.local()

    # the actor reads the claimed row from here
    def claimed(self) -> Any:
        return getattr(self._local, "run", None)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self._local.run = None
        self._local.outcome = None
        self._local.slot = None  # the queue whose slot a limited claim took
        if message.actor_name != ACTOR_NAME:
            return
        run_id = _run_id(message)
        if run_id is None:
            log.error(
                "dead-lettering malformed message %s: args=%r kwargs=%r",
                message.message_id,
                message.args,
                message.kwargs,
                extra={"action": "malformed_message"},
            )
            message.fail()
            raise SkipMessage("malformed message")
        store = self.runtime.store
        lease = self.runtime.settings.lease_seconds
        run = store.claim(run_id, self.executor.owner, lease)
        if run is None:
            row = store.get_run(run_id)
            # still QUEUED and due: its task is limited, or ops hold its queue (paused,
            # limit overridden); either way it may start only into a free slot. One not
            # yet due (an early redelivery) is only skipped, as before.
            if (row is not None and row["status"] == RunStatus.QUEUED
                    and (row["available_at"] is None or row["available_at"] <= utcnow())):
                run = self._claim_limited(row, lease)
                self._local.slot = row["concurrency_queue"] or row["task_identifier"]
                if run is None:
                    # waiting for a slot, or taken meanwhile: this message is done. No
                    # SkipMessage, whose warning would log every wait as a dropped message
                    return
        if run is None:
            if row is None:
                log.error(
                    "dead-lettering message for unknown run %s",
                    run_id,
                    extra={"run_id": run_id, "action": "unknown_run"},
                )
                message.fail()
            else:
                log.debug(
                    "run %s not claimable (duplicate, canceled or not due)",
                    run_id,
                    extra={"run_id": run_id, "action": "claim_skipped"},
                )
            raise SkipMessage("not claimable")
        if get_task(run["task_identifier"]) is None:
            # a worker without this task's code (an older deploy): park the run, uncharged,
            # for a worker that has it — its boot releases PENDING_VERSION runs
            store.park_pending_version(run, self.executor.owner)
            log.warning(
                "run %s: task %r is not served by this worker; parked",
                run_id,
                run["task_identifier"],
                extra={"run_id": run_id, "action": "task_not_served"},
            )
            raise SkipMessage("task not served here")
        log.debug(
            "run %s attempt %s started (%s)",
            run_id,
            run["attempt_count"],
            run["task_identifier"],
            extra={"run_id": run_id, "action": "attempt_started"},
        )
        self._local.run = run

    def _claim_limited(self, row: Any, lease: float) -> Any:
        """A run of a limited or held task: claimed only into a free slot of an unpaused
        queue."""
        from .store.slots import claim_limited

        run = claim_limited(self.runtime.store, row, self.executor.owner, lease)
        if run is None:
            log.debug(
                "run %s waits for its queue (%s): paused, or every slot taken",
                row["id"],
                row["task_identifier"],
                extra={"run_id": row["id"], "action": "waiting_for_slot"},
            )
        return run

    def record(self, outcome: Outcome) -> None:
        self._local.outcome = outcome

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        run = getattr(self._local, "run", None)
        if run is None:
            return
        self._local.run = None
        slot, self._local.slot = getattr(self._local, "slot", None), None
        outcome: Outcome | None = getattr(self._local, "outcome", None)
        if outcome is None:  # the executor itself broke: our fault, not the task's
            outcome = Outcome(
                RunStatus.SYSTEM_FAILURE,
                error={"type": "SYSTEM_FAILURE", "message": f"executor error: {exception!r}"},
            )
        self.finish(run, outcome)
        if slot is not None:
            self._hand_on(slot)

    def _hand_on(self, queue: str) -> None:
        """The attempt has left EXECUTING: its slot goes to a waiting run now."""
        from .store.slots import hand_on

        rt = self.runtime
        if not rt.can_publish:
            return
        try:
            hand_on(rt.store, queue, rt.publisher.publish)
        except Exception:  # the timer's wake step hands it on within a tick anyway
            log.warning("run in queue %s: handing on its slot failed", queue, exc_info=True,
                        extra={"action": "slot_hand_on_failed"})

    def _write(self, run: Any, outcome: Outcome) -> bool:
        return bool(
            self.runtime.store.finish_attempt(
                run,
                self.executor.owner,
                status=outcome.status,
                execution_ms=outcome.execution_ms,
                output=outcome.output,
                error=outcome.error,
                metadata=outcome.metadata,
                logs=outcome.logs,
                retry_at=outcome.retry_at,
                attempt_status=outcome.attempt_status,
                waiting_on=outcome.waiting_on,
            )
        )

    def finish(self, run: Any, outcome: Outcome) -> None:
        if outcome.attempt_status == "RELEASED":  # worker shutting down: not the run's fault
            self.runtime.store.add_logs(outcome.logs)
            self.runtime.store.release_runs(self.executor.owner, [run["id"]])
            log.debug(
                "run %s handed back on shutdown",
                run["id"],
                extra={"run_id": run["id"], "action": "attempt_released"},
            )
            return
        try:
            ok = self._write(run, outcome)
        except Exception as exc:
            # what the attempt produced is checked before this (NULs and lone surrogates
            # refused or escaped); anything else the database still refuses must not leave
            # the run executing until its lease lapses, to be retried into the same
            # refusal: fail it now, without the refused output, metadata and logs
            reason = _refused_data(exc)
            if reason is None:
                raise
            log.error(
                "run %s: the store refused the attempt's result (%s); the run fails",
                run["id"],
                reason,
                extra={"run_id": run["id"], "action": "result_refused"},
            )
            error = {
                "type": "UnstorableValueError",
                "code": "UNSTORABLE_VALUE",
                "message": f"the attempt's result could not be stored: {reason}",
            }
            outcome = Outcome(RunStatus.FAILED, error=error, execution_ms=outcome.execution_ms)
            ok = self._write(run, outcome)
        log.debug(
            "run %s attempt %s -> %s%s",
            run["id"],
            run["attempt_count"],
            outcome.status.value,
            "" if ok else " (ignored: run no longer ours)",
            extra={
                "run_id": run["id"],
                "action": "attempt_finished",
                "status": outcome.status.value,
            },
        )


def _refused_data(exc: BaseException) -> str | None:
    """The one-line reason when ``exc`` is a value refused on its way to the database:
    psycopg's DataError (the server's refusal) or text the driver cannot encode (a lone
    surrogate), bare or wrapped by SQLAlchemy; None for any other error. Only the primary
    message and the codec's reason: the detail lines and the codec's message quote the
    data, which may be a secret."""
    import psycopg

    orig = getattr(exc, "orig", exc)
    if isinstance(orig, UnicodeEncodeError):
        return f"text the database cannot take ({orig.reason})"
    if not isinstance(orig, psycopg.DataError):
        return None
    return str(orig.diag.message_primary or type(orig).__name__)


def _run_id(message: Any) -> str | None:
    args = message.args
    if message.kwargs or not isinstance(args, list | tuple) or len(args) != 1:
        return None
    value = args[0]
    if not isinstance(value, str) or not value.startswith("run_") or len(value) > 40:
        return None
    return value
