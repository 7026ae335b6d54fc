"""``POST /api/v1/runs/bulk``: cancel or replay every run a filter matches, over HTTP, against a
real dashboard, worker, Postgres and RabbitMQ; a truncated answer's ``next`` goes on."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from runtime import RunStatus, runs, tasks
from tests.helpers import wait_final

from .conftest import Server

pytestmark = pytest.mark.integration


def _delayed(tag: str, n: int) -> list[str]:
    return [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=[tag]).id for i in range(n)]


def test_bulk_endpoint_cancels_then_replays_each_run_once_across_calls(server: Server) -> None:
    c = server.client()
    tag, other = f"bulk:{uuid.uuid4().hex[:8]}", f"bulk:{uuid.uuid4().hex[:8]}"
    mine = _delayed(tag, 5)
    theirs = _delayed(other, 1)

    def bulk(**body: Any) -> dict[str, Any]:
        r = c.post("/api/v1/runs/bulk", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    counted = bulk(action="cancel", filter={"tag": tag}, dryRun=True)
    assert counted == {"action": "cancel", "count": 5, "runIds": [], "truncated": False,
                       "dryRun": True, "next": None, "notFound": []}
    assert {runs.retrieve(r).status for r in mine} == {RunStatus.DELAYED}

    first = bulk(action="cancel", filter={"tag": [tag], "status": "DELAYED"}, maxRuns=2)
    assert (first["count"], first["truncated"], first["runIds"]) == (2, True, mine[:-3:-1])
    assert first["next"] == mine[3]  # the last run walked: newest first
    rest = bulk(action="cancel", filter={"tag": tag}, after=first["next"])
    assert (rest["count"], rest["truncated"], rest["next"]) == (3, False, None)
    assert rest["runIds"] == mine[2::-1]
    assert runs.retrieve(theirs[0]).status == RunStatus.DELAYED

    # Replay in pages of two, each call going on below the last: every canceled run is
    # replayed exactly once, although the replays carry the tag too (they are newer).
    new: list[str] = []
    after = None
    for _ in range(5):
        page = bulk(action="replay", filter={"tag": tag, "status": ["CANCELED"]}, maxRuns=2,
                    after=after)
        new += page["runIds"]
        after = page["next"]
        if not page["truncated"]:
            break
    assert len(new) == 5 and after is None
    assert sorted(runs.retrieve(r).replayed_from for r in new) == sorted(mine)
    assert {wait_final(r).status for r in new} == {RunStatus.COMPLETED}

    # runs named by id instead of a filter: unknown ids are listed, final ones skipped
    named = bulk(action="cancel", runIds=[theirs[0], mine[0], "run_" + "0" * 26], dryRun=True)
    assert (named["count"], named["notFound"]) == (1, ["run_" + "0" * 26])

    # the SDK's request idempotency key: a retried POST answers again, acts once
    headers = {"x-trigger-request-idempotency-key": uuid.uuid4().hex}
    body = {"action": "cancel", "filter": {"tag": other}}
    once = c.post("/api/v1/runs/bulk", json=body, headers=headers).json()
    again = c.post("/api/v1/runs/bulk", json=body, headers=headers).json()
    assert once == again and once["count"] == 1 and once["runIds"] == theirs
    assert runs.retrieve(theirs[0]).status == RunStatus.CANCELED


@pytest.mark.parametrize(("body", "message"), [
    ({"action": "cancel"}, "needs a filter"),
    ({"action": "cancel", "filter": {}}, "needs a filter"),
    ({"action": "delete", "filter": {"tag": "x"}}, "action must be"),
    ({"action": "cancel", "filter": {"tag": "x"}, "maxRuns": 0}, "maxRuns must be"),
    ({"action": "cancel", "filter": {"tag": "x"}, "maxRuns": 10_001}, "maxRuns must be"),
    ({"action": "cancel", "filter": {"tag": "x"}, "maxRuns": True}, "maxRuns must be"),
    ({"action": "cancel", "filter": {"status": "STUCK"}}, "Invalid status filter 'STUCK'"),
    ({"action": "cancel", "filter": {"owner": "me"}}, "unknown key(s) owner"),
    ({"action": "cancel", "filter": {"tag": 7}}, "Invalid filter.tag"),
    ({"action": "cancel", "filter": {"createdAt": {"period": "soon"}}}, "soon"),
    ({"action": "cancel", "filter": {"createdAt": {"since": 1}}}, "Invalid filter.createdAt"),
    ({"action": "replay", "filter": {"tag": "x"}, "after": "42"}, "after must be a run id"),
    ({"action": "replay", "filter": {"tag": "x"}, "dryRun": "yes"}, "dryRun is a boolean"),
    ({"action": "replay", "filter": {"tag": "x"}, "runs": []}, "unknown key(s) runs"),
    ({"action": "cancel", "filter": {"tag": "x"}, "runIds": ["run_a"]}, "not both"),
    ({"action": "cancel", "runIds": "run_a"}, "runIds is a list of run ids"),
    ({"action": "cancel", "runIds": ["run_a", "run_b"], "maxRuns": 1}, "at most max_runs"),
    ([], "expected a JSON object"),
])
def test_bulk_endpoint_refuses_bad_requests_and_acts_on_nothing(
    server: Server, body: Any, message: str
) -> None:
    tag = f"bulk:{uuid.uuid4().hex[:8]}"
    waiting = _delayed(tag, 1)
    r = server.client().post("/api/v1/runs/bulk", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert runs.retrieve(waiting[0]).status == RunStatus.DELAYED
    runs.bulk_cancel(tag=tag)


def test_bulk_endpoint_needs_an_api_key(server: Server) -> None:
    tag = f"bulk:{uuid.uuid4().hex[:8]}"
    waiting = _delayed(tag, 1)
    r = server.client(key=None).post("/api/v1/runs/bulk",
                                     json={"action": "cancel", "filter": {"tag": tag}})
    assert r.status_code == 401
    assert runs.retrieve(waiting[0]).status == RunStatus.DELAYED
    runs.bulk_cancel(tag=tag)
