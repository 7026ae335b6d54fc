"""The rules of ``runtime.hooks`` without a worker: registration, what ``catch_error`` may
answer and when the next attempt starts, the middleware chain, hook calling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runtime import RetryOptions, hooks, task, tasks
from runtime.executor import call_hook, run_middleware
from runtime.task import unregister

POLICY = {"max_attempts": 3, "factor": 2, "min_timeout_ms": 100, "max_timeout_ms": 10_000,
          "randomize": False}
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
DEFAULT_AT = NOW + timedelta(milliseconds=100)


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    saved = hooks.registered()
    yield
    hooks.restore(saved)


def test_registration_forms_and_order():
    @task(id="unit-hooks", on_failure=lambda: None)
    def t(payload: Any) -> None: ...

    try:
        def first(payload: Any) -> None: ...
        def second(payload: Any) -> None: ...

        tasks.on_failure(first)
        tasks.on_failure("named", second)
        decorated = tasks.on_failure("by-decorator")(lambda payload: None)
        assert hooks.hooks_for("on_failure", t) == [first, second, decorated, t.on_failure]
        tasks.on_failure(first)  # the same function again: still once
        tasks.on_failure("named", first)  # a name again: replaced
        assert hooks.hooks_for("on_failure", t) == [first, first, decorated, t.on_failure]
        hooks.unregister("on_failure", "named")
        hooks.unregister("on_failure", first)
        assert hooks.hooks_for("on_failure", t) == [decorated, t.on_failure]
    finally:
        unregister("unit-hooks")


def test_bad_registrations_are_refused_clearly():
    with pytest.raises(TypeError, match="must be callable"):
        tasks.on_start("x", 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a name"):
        tasks.middleware(lambda payload, next: next())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown hook kind"):
        hooks.register("on_explode", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="catch_error must be callable"):
        task(id="unit-bad-hook", catch_error="retry please")(lambda payload: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="middleware must be callable"):
        task(id="unit-bad-mw", middleware=[None])(lambda payload: None)  # type: ignore[list-item]


@pytest.mark.parametrize(
    "answer, message",
    [
        ("yes", "must return None or a dict"),
        ({"skip": True}, "unknown keys"),
        ({"retry_at": "tomorrow"}, "must be a datetime"),
        ({"retry_at": datetime(2030, 1, 1)}, "must carry a timezone"),
        ({"retry_delay_ms": -5}, "retry_delay_ms must be"),
        ({"retry_delay_ms": True}, "retry_delay_ms must be"),
        ({"retry": 3}, "RetryOptions or a dict"),
        ({"retry": {"attempts": 3}}, "unknown fields"),
    ],
)
def test_catch_error_answers_that_cannot_be_meant(answer: Any, message: str):
    with pytest.raises((TypeError, ValueError), match=message):
        hooks.parse_decision(answer, POLICY)


def _next(answer: Any, attempt: int = 1, max_attempts: int = 3) -> datetime | None:
    decision = hooks.parse_decision(answer, POLICY)
    default_at = DEFAULT_AT if attempt < max_attempts else None
    return hooks.next_retry(decision, POLICY, attempt, max_attempts, NOW, default_at)


def test_when_the_next_attempt_starts():
    assert _next(None) == DEFAULT_AT
    assert _next({}) == DEFAULT_AT
    assert _next({"skip_retrying": True}) is None
    assert _next({"retry_delay_ms": 2500}) == NOW + timedelta(seconds=2.5)
    later = NOW + timedelta(minutes=5)
    assert _next({"retry_at": later}) == later
    assert _next({"retry_at": NOW - timedelta(hours=1)}) == NOW  # the past means now
    # the attempt bound holds: no move of an attempt that does not remain
    assert _next({"retry_at": later}, attempt=3) is None
    assert _next({"retry_delay_ms": 10}, attempt=3) is None
    # a policy of its own: its bound and its backoff (100 ms x 2^(3-1) at attempt 3)
    assert _next({"retry": RetryOptions(max_attempts=5)}, attempt=3) == NOW + timedelta(
        milliseconds=400
    )
    assert _next({"retry": {"max_attempts": 2}}, attempt=2) is None
    # an error replaces the raised one; a plain text becomes one
    decision = hooks.parse_decision({"error": "wrong password"}, POLICY)
    assert decision is not None and str(decision.error) == "wrong password"


def test_the_middleware_chain():
    calls: list[str] = []

    def mw(name: str) -> Any:
        def fn(payload: Any, ctx: Any, next: Any) -> str:
            calls.append(f"{name}:in:{payload}")
            value = next()
            calls.append(f"{name}:out:{value}")
            return "ignored"
        return fn

    assert run_middleware([mw("a"), mw("b")], "p", None, lambda: "output") == "output"
    assert calls == ["a:in:p", "b:in:p", "b:out:output", "a:out:output"]
    assert run_middleware([], "p", None, lambda: 7) == 7

    def twice(next: Any) -> None:
        next()
        next()

    with pytest.raises(RuntimeError, match="called next\\(\\) twice"):
        run_middleware([twice], None, None, lambda: 1)


def test_hooks_are_called_by_the_names_they_take_or_by_position():
    seen: list[Any] = []
    call_hook(lambda error, payload: seen.append((payload, error)), payload=1, ctx=2, error=3)
    call_hook(lambda p, c, e: seen.append((p, c, e)), payload=1, ctx=2, error=3)
    call_hook(lambda p: seen.append(p), payload=1, ctx=2, error=3)
    call_hook(lambda **kw: seen.append(sorted(kw)), payload=1, ctx=2, wait=4)
    assert seen == [(1, 3), (1, 2, 3), 1, ["ctx", "payload", "wait"]]
