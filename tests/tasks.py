"""Tasks the tests run, importable by worker subprocesses as ``tests.tasks``.

Side effects the tests count (attempts, hook calls, step bodies) are appended to a trace
file named in the payload, so they are visible across processes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr

from runtime import (
    AbortTaskRunError,
    RetryOptions,
    batch,
    get_runtime,
    logger,
    metadata,
    queue,
    schema_task,
    task,
    wait,
)

pylog = logging.getLogger("tests.tasks")


def trace(payload: Any, line: str) -> None:
    path = payload.get("trace") if isinstance(payload, dict) else getattr(payload, "trace", None)
    if path:
        with open(path, "a") as fh:
            fh.write(line + "\n")


def read_trace(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@task(id="t-echo")
def echo(payload: Any) -> Any:
    return {"echo": payload}


def _hook(name: str) -> Any:
    def hook(payload: Any, ctx: Any) -> None:
        trace(payload, f"{name}:{ctx.attempt['number']}")

    hook.__name__ = name
    return hook


@task(
    id="t-flaky",
    retry=RetryOptions(
        max_attempts=3, factor=2, min_timeout_ms=200, max_timeout_ms=5000, randomize=False
    ),
    on_start=_hook("on_start"),
    on_success=_hook("on_success"),
    on_failure=_hook("on_failure"),
    on_complete=_hook("on_complete"),
    cleanup=_hook("cleanup"),
)
def flaky(payload: dict, ctx: Any) -> dict:
    attempt = ctx.attempt["number"]
    trace(payload, f"attempt:{attempt}:{time.time()}")
    if attempt <= payload.get("fail_times", 0):
        raise RuntimeError(f"boom on attempt {attempt}")
    return {"attempt": attempt}


@task(
    id="t-abort",
    retry=RetryOptions(max_attempts=5, min_timeout_ms=10),
    on_failure=_hook("on_failure"),
    on_complete=_hook("on_complete"),
)
def abort(payload: dict, ctx: Any) -> None:
    trace(payload, f"attempt:{ctx.attempt['number']}")
    raise AbortTaskRunError("stop right there")


class Credentials(BaseModel):
    user: str
    password: SecretStr


class SchemaPayload(BaseModel):
    name: str
    count: int = Field(ge=0)
    credentials: Credentials | None = None


class SchemaOutput(BaseModel):
    greeting: str
    count: int


@schema_task(id="t-schema", schema=SchemaPayload, retry=RetryOptions(max_attempts=3))
def schema(payload: SchemaPayload) -> SchemaOutput:
    if payload.credentials is not None:
        # the secret arrives decrypted in the worker; log only a safe derivative
        logger.info(
            "got credentials",
            user=payload.credentials.user,
            password=payload.credentials.password,
            password_length=len(payload.credentials.password.get_secret_value()),
        )
    return SchemaOutput(greeting=f"hello {payload.name}", count=payload.count)


@task(
    id="t-slow",
    max_duration=300,
    retry=RetryOptions(max_attempts=3, min_timeout_ms=100, randomize=False),
    on_complete=_hook("on_complete"),
)
def slow(payload: dict, ctx: Any) -> dict:
    trace(payload, f"start:{ctx.attempt['number']}")
    deadline = time.monotonic() + payload.get("seconds", 1)
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if payload.get("chatty"):
            logger.debug("tick")
    trace(payload, f"done:{ctx.attempt['number']}")
    return {"slept": payload.get("seconds", 1)}


@task(
    id="t-timeout",
    max_duration=1,
    retry=RetryOptions(max_attempts=3),
    on_complete=_hook("on_complete"),
)
def timeout(payload: dict, ctx: Any) -> None:
    trace(payload, f"attempt:{ctx.attempt['number']}")
    while True:
        time.sleep(0.01)


@task(id="t-large", machine="large-1x")
def large(payload: dict) -> dict:
    return {"ran": "large"}


@task(id="t-logs")
def logs(payload: dict) -> dict:
    logger.info("hello from the task", answer=42)
    logger.warn("careful")
    pylog.warning("python logging is captured too")
    metadata.set("progress", 0.5).increment("n", 2).append("items", "a")
    metadata.append("items", "b")
    metadata.decrement("n", 1)
    metadata.set("tmp", 1).delete("tmp")
    metadata.append("gone", "x").remove("gone", "x")
    metadata.flush()
    return {"ok": True, "progress": metadata.get("progress"), "current": metadata.current()}


@task(id="t-big-metadata")
def big_metadata(payload: dict) -> dict:
    try:
        metadata.set("blob", "x" * 300_000)
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": None}


@task(id="t-nul", retry=RetryOptions(max_attempts=1))
def nul(payload: dict) -> Any:
    """NUL characters, which Postgres refuses in jsonb and text, in what a run produces."""
    if payload["mode"] == "output":
        return {"rows": ["fine", "bad\x00row"]}
    if payload["mode"] == "surrogate":  # a lone surrogate: JSON text Postgres refuses
        return {"s": "\ud800"}
    if payload["mode"] == "raise":
        raise ValueError("bad\x00value")
    if payload["mode"] == "surrogate-text":  # in a log line and an error message
        logger.info("a \ud800 line", note="\udc00")
        raise ValueError("bad \ud800 value")
    logger.info("line with a \x00 in it", note="attr\x00value")
    pylog.warning("python \x00 record")
    try:
        metadata.set("ok", 1).set("k", {"deep": ["a\x00"]})
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc), "meta": metadata.current()}
    return {"error": None}


@task(id="t-long-text", retry=RetryOptions(max_attempts=1))
def long_text(payload: dict) -> Any:
    """A log line, an attribute, a Python log record and an error message of 200,000
    characters each (a task logging a whole file; a driver quoting a huge statement)."""
    n = payload["n"]
    logger.info("m" * n, blob="a" * n, short="kept")
    pylog.warning("p" * n)
    raise ValueError("e" * n)


@task(
    id="t-big-output",
    retry=RetryOptions(max_attempts=3, min_timeout_ms=100, randomize=False),
    on_success=_hook("on_success"),
    on_failure=_hook("on_failure"),
)
def big_output(payload: dict) -> Any:
    """An output, or a step's result, at or just over ``max_output_bytes``."""
    limit = get_runtime().settings.max_output_bytes
    trace(payload, "attempt")
    if payload["mode"] == "step":
        try:
            wait.step("big", lambda: "x" * limit)  # as JSON: the limit + 2 quotes
        except Exception as exc:
            return {"error": type(exc).__name__, "message": str(exc)}
        return {"error": None}
    over = 1 if payload["mode"] == "over" else 0
    shell = len('{"blob":""}')  # what the JSON adds around the string
    return {"blob": "x" * (limit - shell + over)}


# ----------------------------------------------------------------------- waits
@task(id="t-wait")
def waiter(payload: dict) -> dict:
    trace(payload, "before")
    n = wait.step("side-effect", lambda: (trace(payload, "step-body"), 7)[1])
    wait.for_(seconds=payload.get("seconds", 10))
    trace(payload, "after")
    return {"n": n}


@task(id="t-child", retry=RetryOptions(max_attempts=1))
def child(payload: dict) -> dict:
    if payload.get("fail"):
        raise ValueError(f"child {payload.get('i')} failed on purpose")
    return {"i": payload.get("i"), "double": 2 * payload.get("i", 0)}


@task(id="t-parent")
def parent(payload: dict) -> dict:
    trace(payload, "parent-start")
    opts = {"queue": payload["child_queue"]} if payload.get("child_queue") else {}
    res = child.trigger_and_wait({"i": 1, "fail": payload.get("fail", False)}, **opts)
    if payload.get("unwrap"):
        return {"value": res.unwrap()}
    return {"ok": res.ok, "output": res.output, "error": res.error}


@task(id="t-batch-parent")
def batch_parent(payload: dict) -> dict:
    results = child.batch_trigger_and_wait([{"payload": {"i": i}} for i in range(payload["n"])])
    return {"outputs": [r.output["i"] for r in results], "ok": all(r.ok for r in results)}


@task(id="t-mixed-batch-parent")
def mixed_batch_parent(payload: dict) -> dict:
    """One suspension for children of three tasks (Trigger.dev's batch.triggerByTaskAndWait),
    or by id (batch.triggerAndWait) when ``by_id``."""
    trace(payload, "parent-start")
    items: list[dict[str, Any]] = [
        {"task": child, "payload": {"i": 3}},
        {"task": schema, "payload": {"name": "ada", "count": 2}},
        {"task": child, "payload": {"i": 4, "fail": True}},
        {"task": echo, "payload": {"e": 1}, "options": {"tags": ["mixed"]}},
    ]
    if payload.get("by_id"):
        items = [{"id": item["task"].id, **{k: v for k, v in item.items() if k != "task"}}
                 for item in items]
        results = batch.trigger_and_wait(items, max_attempts=1)
    else:
        results = batch.trigger_by_task_and_wait(items, max_attempts=1)
    trace(payload, "parent-resumed")
    return {"results": [
        [r.task_identifier, r.ok,
         r.output.model_dump() if isinstance(r.output, BaseModel) else r.output,
         type(r.output).__name__, (r.error or {}).get("message")]
        for r in results]}


@task(id="t-nondeterministic")
def nondeterministic(payload: dict) -> dict:
    # first execution: waits for t-slow (slow enough that the run really suspends); on
    # replay the marker file exists and the code calls t-echo instead
    marker = Path(payload["marker"])
    if marker.exists():
        echo.trigger_and_wait({"x": 1})
    else:
        marker.write_text("1")
        slow.trigger_and_wait({"seconds": 0.5})
    return {}


@task(id="t-token")
def token_waiter(payload: dict) -> dict:
    token = wait.create_token(timeout=payload.get("timeout", "1h"))
    trace(payload, f"token:{token.id}")
    res = wait.for_token(token)
    return {"ok": res.ok, "output": res.output, "error": res.error}


@task(id="t-concurrent-wait")
def concurrent_wait(payload: dict) -> dict:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(2) as pool:
        f1 = pool.submit(ctx.copy().run, wait.for_, seconds=30)
        f2 = pool.submit(ctx.copy().run, wait.for_, seconds=30)
        f1.result()
        f2.result()
    return {}


@task(id="t-fanout")
def fanout(payload: dict) -> dict:
    handles = [echo.trigger({"i": i}) for i in range(payload.get("n", 2))]
    batch = echo.batch_trigger([{"payload": {"b": i}} for i in range(2)])
    return {"children": [h.id for h in handles], "batch": batch.batch_id}


@task(id="t-limited", concurrency_limit=2)
def limited(payload: dict) -> dict:
    trace(payload, f"start {payload.get('key', '')} {time.monotonic()}")
    time.sleep(payload.get("seconds", 0.3))
    trace(payload, f"end {payload.get('key', '')} {time.monotonic()}")
    return {"i": payload.get("i")}


@task(id="t-limited-one", concurrency_limit=1)
def limited_one(payload: dict) -> dict:
    return limited.fn(payload)


@task(id="t-limited-total", concurrency_limit=1, total_concurrency_limit=2)
def limited_total(payload: dict) -> dict:
    return limited.fn(payload)


@task(id="t-traced")
def traced(payload: dict) -> dict:
    """Like t-limited, without a limit of its own (ops hold its queue in tests)."""
    return limited.fn(payload)


# one slot per concurrency key shared by two tasks (Trigger.dev's shared queue()); one of
# them on the large machine, whose messages go to the other RabbitMQ queue
shared_one = queue("t-shared", concurrency_limit=1)


@task(id="t-shared-a", queue=shared_one)
def shared_a(payload: dict) -> dict:
    return limited.fn(payload)


@task(id="t-shared-b", queue=shared_one, machine="large-1x")
def shared_b(payload: dict) -> dict:
    return limited.fn(payload)


# one slot per key, two over all keys, shared by two tasks
shared_total = queue("t-shared-total", concurrency_limit=1, total_concurrency_limit=2)


@task(id="t-shared-total-a", queue=shared_total)
def shared_total_a(payload: dict) -> dict:
    return limited.fn(payload)


@task(id="t-shared-total-b", queue=shared_total)
def shared_total_b(payload: dict) -> dict:
    return limited.fn(payload)


@task(id="t-limited-wait", concurrency_limit=1)
def limited_wait(payload: dict) -> dict:
    if payload.get("quick"):
        return {"quick": True}
    token = wait.create_token(timeout="1m")
    trace(payload, f"token:{token.id}")
    res = wait.for_token(token)
    return {"ok": res.ok}
