"""Lifecycle hooks that apply to every task (Trigger.dev v4's ``tasks.onStart(...)`` and
friends), task middleware, and what ``catch_error`` may answer.

Global hooks are registered once per process, usually at import of a task module::

    @tasks.on_failure
    def alert(payload, ctx, error): ...

    @tasks.middleware("db")
    def db(payload, ctx, next):
        with connect() as conn:
            run_locals.set(DB, conn)
            return next()

They run before the task's own hook of the same kind. A registration is keyed by its name
(or the function's module and qualified name), so importing a module twice registers its
hooks once, and registering a name again replaces the hook.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from .retry import RetryOptions, backoff_ms

if TYPE_CHECKING:
    from .task import Task

Hook = Callable[..., Any]
HookKind = Literal[
    "on_start",
    "on_start_attempt",
    "on_success",
    "on_failure",
    "on_complete",
    "on_wait",
    "on_resume",
    "on_cancel",
    "catch_error",
    "middleware",
]
KINDS: tuple[HookKind, ...] = get_args(HookKind)

_lock = threading.Lock()
_GLOBAL: dict[str, dict[str, Hook]] = {kind: {} for kind in KINDS}


def _key(fn: Hook) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def register(kind: HookKind, name_or_fn: str | Hook, fn: Hook | None = None) -> Any:
    """``register(kind, fn)``, ``register(kind, "name", fn)``, or as a decorator:
    ``register(kind, "name")`` returns one. Returns the function."""
    if kind not in _GLOBAL:
        raise ValueError(f"unknown hook kind {kind!r}; one of {', '.join(KINDS)}")
    if isinstance(name_or_fn, str):
        name = name_or_fn
        if fn is None:
            return lambda f: register(kind, name, f)
    else:
        if fn is not None:
            raise TypeError("give the hook's name first: register(kind, 'name', fn)")
        fn, name = name_or_fn, _key(name_or_fn)
    if not callable(fn):
        raise TypeError(f"a {kind} hook must be callable, not {type(fn).__name__}")
    with _lock:
        _GLOBAL[kind][name] = fn
    return fn


def unregister(kind: HookKind, name_or_fn: str | Hook) -> None:
    name = name_or_fn if isinstance(name_or_fn, str) else _key(name_or_fn)
    with _lock:
        _GLOBAL[kind].pop(name, None)


def registered() -> dict[str, dict[str, Hook]]:
    """A copy of every global registration (tests save and restore it)."""
    with _lock:
        return {kind: dict(hooks) for kind, hooks in _GLOBAL.items()}


def restore(saved: dict[str, dict[str, Hook]]) -> None:
    with _lock:
        for kind in KINDS:
            _GLOBAL[kind] = dict(saved.get(kind, {}))


def hooks_for(kind: HookKind, task: Task[Any], *, own_first: bool = False) -> list[Hook]:
    """The global hooks of ``kind`` in registration order, then the task's own (first,
    with ``own_first``: a task's ``catch_error`` answers before the global ones)."""
    with _lock:
        shared = list(_GLOBAL[kind].values())
    own = getattr(task, kind, None)
    mine = list(own or ()) if kind == "middleware" else ([] if own is None else [own])
    return mine + shared if own_first else shared + mine


# -------------------------------------------------------------------------- catch_error
@dataclass(frozen=True)
class ErrorDecision:
    """What ``catch_error`` answered, normalised. Trigger.dev's ``{ skipRetrying }``,
    ``{ retryAt }``, ``{ retryDelayInMs }``, ``{ retry }`` and ``{ error }``."""

    skip_retrying: bool = False
    retry_at: datetime | None = None
    retry_delay_ms: float | None = None
    retry: dict[str, Any] | None = None  # a whole policy, resolved against the run's
    error: BaseException | None = None  # recorded instead of the raised error


_DECISION_KEYS = {"skip_retrying", "retry_at", "retry_delay_ms", "retry", "error"}


def parse_decision(answer: Any, policy: dict[str, Any]) -> ErrorDecision | None:
    """``catch_error``'s return value -> a decision; None for "the default policy".
    Raises TypeError/ValueError for an answer that cannot be meant."""
    if answer is None:
        return None
    if not isinstance(answer, dict):
        raise TypeError(
            "catch_error must return None or a dict with skip_retrying, retry_at, "
            f"retry_delay_ms, retry or error; it returned {type(answer).__name__}"
        )
    unknown = set(answer) - _DECISION_KEYS
    if unknown:
        raise ValueError(
            f"catch_error returned unknown keys {sorted(unknown)}; "
            f"known: {sorted(_DECISION_KEYS)}"
        )
    retry_at = answer.get("retry_at")
    if retry_at is not None and not isinstance(retry_at, datetime):
        raise TypeError("catch_error's retry_at must be a datetime")
    if retry_at is not None and retry_at.tzinfo is None:
        raise ValueError("catch_error's retry_at must carry a timezone (e.g. UTC)")
    delay = answer.get("retry_delay_ms")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)
                              or delay < 0):
        raise ValueError("catch_error's retry_delay_ms must be a number of ms >= 0")
    retry = answer.get("retry")
    if retry is not None:
        if isinstance(retry, RetryOptions):
            retry = retry.to_dict()
        if not isinstance(retry, dict):
            raise TypeError("catch_error's retry must be a RetryOptions or a dict of its fields")
        unknown = set(retry) - set(RetryOptions.__dataclass_fields__)
        if unknown:
            raise ValueError(f"catch_error's retry has unknown fields {sorted(unknown)}")
        retry = {**policy, **{k: v for k, v in retry.items() if v is not None}}
    error = answer.get("error")
    if error is not None and not isinstance(error, BaseException):
        error = RuntimeError(str(error))
    return ErrorDecision(
        skip_retrying=bool(answer.get("skip_retrying")),
        retry_at=retry_at,
        retry_delay_ms=None if delay is None else float(delay),
        retry=retry,
        error=error,
    )


def next_retry(
    decision: ErrorDecision | None,
    policy: dict[str, Any],
    attempt: int,
    max_attempts: int,
    now: datetime,
    default_at: datetime | None,
) -> datetime | None:
    """When the next attempt starts, or None for no further attempt. ``default_at`` is the
    run's own policy's answer. The run's attempt bound holds whatever ``catch_error``
    said: ``retry_at``/``retry_delay_ms`` only move an attempt that remains, and a
    ``retry`` policy's own ``max_attempts`` replaces the bound."""
    if decision is None:
        return default_at
    if decision.retry is not None:
        policy = decision.retry
        max_attempts = int(policy.get("max_attempts") or max_attempts)
        default_at = now + timedelta(milliseconds=backoff_ms(policy, attempt))
    if decision.skip_retrying or attempt >= max_attempts:
        return None
    if decision.retry_at is not None:
        return max(now, decision.retry_at)
    if decision.retry_delay_ms is not None:
        return now + timedelta(milliseconds=decision.retry_delay_ms)
    return default_at


# ------------------------------------------------------------------------- the facade
def _registrar(kind: HookKind, doc: str) -> Callable[..., Any]:
    def reg(self: Any, name_or_fn: str | Hook, fn: Hook | None = None) -> Any:
        return register(kind, name_or_fn, fn)

    reg.__name__ = reg.__qualname__ = kind
    reg.__doc__ = doc
    return reg


class GlobalHooks:
    """``tasks.on_start(...)`` etc.: each takes ``fn``, ``"name", fn``, or is a decorator
    (``@tasks.on_failure`` or ``@tasks.on_failure("alerts")``)."""

    on_start = _registrar(
        "on_start", "Before the first attempt of every run (not on retries, not on resumes).")
    on_start_attempt = _registrar(
        "on_start_attempt", 'Before every attempt (``ctx.attempt["number"]`` tells which).')
    on_success = _registrar("on_success", "After a run completed.")
    on_failure = _registrar(
        "on_failure", "After the last attempt failed (not for canceled, timed-out or crashed "
        "runs).")
    on_complete = _registrar("on_complete", "Once a run is final, whatever the status.")
    on_wait = _registrar("on_wait", "When a run suspends at a wait (``wait`` describes it).")
    on_resume = _registrar(
        "on_resume", "When a suspended run continues, before it replays (``wait``: the wait "
        "it ended).")
    on_cancel = _registrar(
        "on_cancel", "When a run is canceled (executing, or queued, delayed or waiting).")
    catch_error = _registrar(
        "catch_error", "After a failed attempt of any task without a ``catch_error`` answer "
        "of its own.")

    def middleware(self, name: str, fn: Hook | None = None) -> Any:
        """Wrap every attempt: ``fn(payload, ctx, next)`` must call ``next()`` once."""
        if not isinstance(name, str):
            raise TypeError("a middleware needs a name: tasks.middleware('db', fn)")
        return register("middleware", name, fn)
