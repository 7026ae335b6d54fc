"""``trigger(..., debounce={...})``: Trigger.dev v4's debounced triggers.

``debounce={"key": "user-42", "delay": "5s"}`` delays the run by ``delay``; each further
trigger of the same task with the same key while the run is still DELAYED pushes its start
to ``delay`` after that trigger instead of starting another run, so a burst of triggers
runs the task once, ``delay`` after the last of them. ``max_delay`` bounds the push: the
run starts no later than that long after the first trigger. ``mode="leading"`` (the
default) keeps the first trigger's payload and options; ``"trailing"`` gives the run the
latest trigger's payload, metadata, tags, max attempts, max duration and machine. The
storage side is runtime/store/debounce.py.

An idempotency key wins: a trigger whose key names an existing run returns that run, as any
keyed trigger does; otherwise the key goes with the run the trigger creates (a trigger that
only pushes a run leaves the run's key as it was).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from .bootstrap import Runtime
from .durations import parse_duration, utcnow
from .errors import InvalidTriggerOptionsError
from .statuses import RunStatus

#: Trigger.dev's limit on a debounce key
MAX_KEY_LENGTH = 512
_FIELDS = {"key", "delay", "mode", "max_delay"}


@dataclass(frozen=True)
class Debounce:
    key: str
    delay_s: float
    trailing: bool
    max_delay_s: float | None


def parse(value: Any) -> Debounce:
    """The ``debounce`` option, checked: a clear error for anything else."""
    if not isinstance(value, dict):
        raise InvalidTriggerOptionsError(
            "debounce must be a dict like {'key': 'user-42', 'delay': '5s'}, "
            f"got {type(value).__name__}"
        )
    unknown = set(value) - _FIELDS
    if unknown:
        raise InvalidTriggerOptionsError(
            f"unknown debounce field(s): {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(_FIELDS))}"
        )
    key = value.get("key")
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidTriggerOptionsError(
            f"debounce.key must be a string of 1–{MAX_KEY_LENGTH} characters, got {key!r}"
        )
    mode = value.get("mode", "leading")
    if mode not in ("leading", "trailing"):
        raise InvalidTriggerOptionsError(
            f"debounce.mode must be 'leading' or 'trailing', got {mode!r}"
        )
    try:
        delay = parse_duration(value.get("delay"))
        max_delay = parse_duration(value.get("max_delay"))
    except ValueError as exc:
        raise InvalidTriggerOptionsError(f"debounce: {exc}") from None
    if delay is None or delay <= 0:
        raise InvalidTriggerOptionsError(
            f"debounce.delay must be a positive duration ('5s', '1m' or seconds), "
            f"got {value.get('delay')!r}"
        )
    if max_delay is not None and max_delay < delay:
        raise InvalidTriggerOptionsError(
            f"debounce.max_delay ({value.get('max_delay')!r}) is shorter than its delay "
            f"({value.get('delay')!r})"
        )
    return Debounce(key, float(delay), mode == "trailing", max_delay)


def trigger_debounced(rt: Runtime, task_id: str, payload: Any, options: dict[str, Any],
                      task: Any) -> Any:
    """The run a debounced trigger starts or pushes (a RunHandle)."""
    from datetime import timedelta

    from .store.debounce import debounce_run
    from .trigger import RunHandle, build_row, insert_and_publish

    spec = parse(options["debounce"])
    if options.get("delay") is not None:
        raise InvalidTriggerOptionsError(
            "debounce has its own delay: pass debounce={'key': …, 'delay': …} without delay"
        )
    now = utcnow()
    opts = {name: value for name, value in options.items() if name != "debounce"}
    opts["delay"] = spec.delay_s
    row = build_row(rt, task_id, payload, opts, task, now=now)
    if row["status"] != RunStatus.DELAYED:  # PENDING_VERSION: no worker has the task yet
        return insert_and_publish(rt, [row])[0]
    if row["idempotency_key"] is not None:
        held = _idempotent_hit(rt, row)
        if held is not None:
            return held
    row["debounce_key"] = spec.key
    row["debounce_until"] = (
        now + timedelta(seconds=spec.max_delay_s) if spec.max_delay_s is not None else None
    )
    try:
        run_id, _ = debounce_run(rt.store, row, spec.trailing)
    except IntegrityError:
        # a simultaneous trigger took the idempotency key between the check and the insert
        held = _idempotent_hit(rt, row) if row["idempotency_key"] is not None else None
        if held is None:
            raise
        return held
    return RunHandle(run_id, task_id)


def _idempotent_hit(rt: Runtime, row: dict[str, Any]) -> Any:
    """The run that already holds the trigger's idempotency key (a cached handle), or None."""
    from .trigger import cached_holder

    key, task_id = row["idempotency_key"], row["task_identifier"]
    return cached_holder(rt, task_id, key,
                         rt.store.find_by_idempotency_keys(task_id, [key]).get(key))
