"""Tasks for the parent/root metadata tests (tests/integration/test_metadata_ops.py)."""

from __future__ import annotations

import time
from typing import Any

from runtime import RetryOptions, metadata, tags, task, wait
from runtime.errors import InvalidTriggerOptionsError, UnstorableValueError


@task(id="m-child")
def child(payload: dict, ctx: Any) -> dict:
    for _ in range(payload["increments"]):
        metadata.parent.increment("done")
    metadata.parent.append("children", payload["n"]).increment("label")  # label is text
    metadata.root.increment("root_done", 2)
    if payload.get("grandchild"):
        grandchild.trigger_and_wait({"n": payload["n"]}).unwrap()
    try:
        metadata.parent.set("bad", "a\x00b")
    except UnstorableValueError:
        metadata.set("refused", True)
    return {"n": payload["n"]}


@task(id="m-grandchild")
def grandchild(payload: dict, ctx: Any) -> None:
    metadata.parent.set("grandchild", payload["n"])  # the child's document
    metadata.root.increment("from_grandchildren")  # the root's


@task(id="m-waiting-parent")
def waiting_parent(payload: dict, ctx: Any) -> dict:
    metadata.set("label", "text")
    metadata.parent.increment("nobody")  # a root run has no parent: nothing happens
    metadata.root.increment("root_done", 0)  # a root run's root is itself
    n, k = payload["children"], payload["increments"]
    items = [{"payload": {"n": i, "increments": k, "grandchild": i == 0}} for i in range(n)]
    results = child.batch_trigger_and_wait(items)
    return {"ok": all(r.ok for r in results)}


@task(id="m-busy-parent")
def busy_parent(payload: dict, ctx: Any) -> dict:
    """Keeps writing its own metadata while its children change it: both must survive."""
    n, k = payload["children"], payload["increments"]
    child.batch_trigger([{"payload": {"n": i, "increments": k}} for i in range(n)])
    ticks, deadline = 0, time.monotonic() + 30
    while metadata.get("done") != n * k and time.monotonic() < deadline:
        ticks += 1
        metadata.set("tick", ticks)
        time.sleep(0.02)
    return {"done_seen": metadata.get("done"), "ticks": ticks}


@task(id="m-own-replay")
def own_replay(payload: dict, ctx: Any) -> dict:
    """An increment before a wait: the resumed execution replays it, and must not count it
    again."""
    metadata.increment("visits").append("seen", "before")
    token = wait.create_token(timeout="1m")
    metadata.set("token", token.id)
    wait.for_token(token)
    metadata.append("seen", "after")
    return {"visits": metadata.get("visits"), "seen": metadata.get("seen")}


@task(id="m-retry-replay", retry=RetryOptions(max_attempts=2, min_timeout_ms=10))
def retry_replay(payload: dict, ctx: Any) -> dict:
    """A retry replays what attempt 1 recorded: the increment before it is not repeated;
    the one after the record (not replayed) is, as any retried code is."""
    metadata.increment("before")
    wait.step("recorded", lambda: 1)
    metadata.increment("after")
    if ctx.attempt["number"] == 1:
        raise RuntimeError("fail the first attempt")
    return {"before": metadata.get("before"), "after": metadata.get("after")}


@task(id="m-progress")
def progress(payload: dict, ctx: Any) -> dict:
    for step in range(1, payload["steps"] + 1):
        metadata.set("step", step).flush()  # flushed at once, so each step is its own change
        time.sleep(payload["pause"])
    return {"steps": payload["steps"]}


@task(id="m-tags")
def add_tags(payload: dict, ctx: Any) -> dict:
    tags.add(f"customer:{payload['customer']}")
    now = tags.add(["found:orders", f"customer:{payload['customer']}"])  # one is there
    try:
        tags.add([f"t{i}" for i in range(20)])
        refused = None
    except InvalidTriggerOptionsError as exc:
        refused = str(exc)
    return {"tags": now, "ctx_tags": list(ctx.run.tags), "refused": refused}
