"""The trigger endpoint's group commit: concurrent requests share one INSERT and one publish
burst, yet each gets its own answer — its own run, the cached run for a taken key, or its
own error (real Postgres and RabbitMQ)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from dashboard.api.trigger_batcher import TriggerBatcher
from runtime import runs
from runtime.bootstrap import get_runtime
from runtime.trigger import build_row
from tests import tasks as _tasks  # noqa: F401 - registers t-echo
from tests.dashboard.conftest import Server


def _row(i: int, **options: Any) -> dict[str, Any]:
    return build_row(get_runtime(), "t-echo", {"i": i}, options, None)


def test_concurrent_submits_share_batches_and_each_gets_its_run(pg_env: Any) -> None:
    batcher = TriggerBatcher(get_runtime())
    rows = [_row(i) for i in range(40)]

    async def go() -> list[Any]:
        return await asyncio.gather(*(batcher.submit(r) for r in rows))

    handles = asyncio.run(go())
    assert [h.id for h in handles] == [r["id"] for r in rows]
    assert batcher.runs == 40 and batcher.batches < 40  # requests did share writes
    stored = {r.id: r for r in runs.list(task="t-echo", limit=100).data}
    assert {r["id"] for r in rows} <= set(stored)
    assert all(r.status.value == "QUEUED" for r in stored.values())


def test_a_bad_row_fails_only_its_own_request(pg_env: Any) -> None:
    batcher = TriggerBatcher(get_runtime())
    good = [_row(i) for i in range(5)]
    bad = _row(99)
    bad["queue"] = "q" * 300  # longer than the column: the database refuses the row

    async def go() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit(r) for r in [good[0], good[1], bad, *good[2:]]),
            return_exceptions=True,
        )

    out = asyncio.run(go())
    assert isinstance(out[2], Exception)
    ok = [h for h in out if not isinstance(h, Exception)]
    assert [h.id for h in ok] == [r["id"] for r in good]
    assert runs.retrieve(good[4]["id"]).status.value == "QUEUED"


@pytest.mark.timeout(120)
def test_many_http_triggers_at_once_with_a_shared_key_make_one_run(server: Server) -> None:
    """40 requests in flight together: 30 distinct runs, and 10 that share one idempotency
    key resolve to one run (one isCached false, nine true)."""
    body = {"payload": '{"json":{"a":1}}', "options": {"payloadType": "application/super+json"}}
    keyed = {**body, "options": {**body["options"], "idempotencyKey": "shared-key-1"}}

    async def go() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {server.key}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as c:
            calls = [c.post("/api/v1/tasks/t-echo/trigger", json=body) for _ in range(30)]
            calls += [c.post("/api/v1/tasks/t-echo/trigger", json=keyed) for _ in range(10)]
            return await asyncio.gather(*calls)

    replies = asyncio.run(go())
    assert all(r.status_code == 200 for r in replies), [
        (r.status_code, r.text) for r in replies if r.status_code != 200
    ]
    plain = [r.json() for r in replies[:30]]
    shared = [r.json() for r in replies[30:]]
    assert len({p["id"] for p in plain}) == 30 and not any(p["isCached"] for p in plain)
    assert len({s["id"] for s in shared}) == 1
    assert sorted(s["isCached"] for s in shared) == [False] + [True] * 9
    done = {runs.retrieve(p["id"]).id for p in plain + shared[:1]}
    assert len(done) == 31
