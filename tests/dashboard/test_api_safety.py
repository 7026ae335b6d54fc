"""No credential in any page or API response; bad input is a clear 4xx and creates
nothing; retried requests create nothing twice; auth and CSRF hold."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from runtime import get_runtime, runs, tasks
from runtime.store import tables as t
from tests.helpers import wait_final, wait_for
from tests.tasks import Credentials, SchemaPayload

from .conftest import Server

pytestmark = pytest.mark.integration
PLANTED_PAYLOAD = "planted-payload-secret-7d1f"
PLANTED_DS = "planted-datasource-password-93ac"


def count(table: Any) -> int:
    with get_runtime().store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def login(server: Server) -> httpx.Client:
    c = httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)
    c.get("/login")
    r = c.post("/login", data={"api_key": server.key, "csrf": c.cookies["bj_csrf"]})
    assert r.status_code == 303, r.text
    return c


def read_sse(c: httpx.Client, path: str) -> str:
    with c.stream("GET", path, timeout=10) as r:
        return "".join(r.iter_text())


@pytest.mark.timeout(180)
def test_no_page_or_response_contains_a_credential(server: Server) -> None:
    from runtime import datasources

    datasources.add(
        "warehouse",
        {
            "type": "postgres",
            "host": "db.example",
            "port": 5432,
            "database": "d",
            "user": "u",
            "password": PLANTED_DS,
        },
    )
    secret_payload = SchemaPayload(
        name="x", count=1, credentials=Credentials(user="u", password=SecretStr(PLANTED_PAYLOAD))
    )
    schema_run = wait_final(tasks.trigger("t-schema", secret_payload).id)
    assert schema_run.status == "COMPLETED"
    plain = wait_final(
        tasks.trigger("dash-secret", {"db": {"password": SecretStr(PLANTED_PAYLOAD)}}).id
    )
    ids = [schema_run.id, plain.id]
    api = server.client()
    browser = login(server)
    sid = browser.get("/datasources").text.split('href="/datasources/')[1].split('"')[0]
    bodies = {}
    for path in [
        "/runs",
        "/tasks",
        "/queues",
        "/schedules",
        "/datasources",
        f"/datasources/{sid}",
        *[f"/runs/{i}" for i in ids],
    ]:
        r = browser.get(path)
        assert r.status_code == 200, (path, r.status_code)
        bodies[path] = r.text
    for i in ids:
        bodies[f"/runs/{i}/events"] = read_sse(browser, f"/runs/{i}/events")
        bodies[f"/api/v1/runs/{i}/stream"] = read_sse(api, f"/api/v1/runs/{i}/stream")
        bodies[f"/api/v3/runs/{i}"] = api.get(f"/api/v3/runs/{i}").text
    for path in [
        "/api/v1/runs?page[size]=100",
        "/api/openapi.json",
        "/metrics",
        "/healthz",
        "/readyz",
    ]:
        r = api.get(path)
        assert r.status_code == 200, path
        bodies[path] = r.text
    assert "**********" in bodies[f"/runs/{schema_run.id}"]  # masked, and shown as masked
    for path, text in bodies.items():
        for secret in (PLANTED_PAYLOAD, PLANTED_DS, server.key):
            assert secret not in text, f"{path} leaks a credential"
    # the run's own logs carried the SecretStr attribute: masked there too
    assert any("**********" in json.dumps(r["attributes"]) for r in runs.logs(schema_run.id))


@pytest.mark.timeout(120)
def test_bad_input_is_a_clear_4xx_and_creates_nothing(server: Server) -> None:
    c = server.client()
    before = (count(t.runs), count(t.schedules), count(t.api_batches))
    hdr = {"content-type": "application/json"}

    r = c.post("/api/v1/tasks/t-echo/trigger", content=b'{"payload": ', headers=hdr)
    assert r.status_code == 400 and "Malformed JSON" in r.json()["error"]
    r = c.post("/api/v1/tasks/t-echo/trigger", content=b"[1,2]", headers=hdr)
    assert r.status_code == 400
    r = c.post("/api/v1/tasks/t-echo/trigger", json={"options": {"maxAttempts": "many"}})
    assert r.status_code == 400 and "maxAttempts" in r.json()["error"]
    r = c.post(
        "/api/v1/tasks/t-echo/trigger",
        json={"payload": '{"json": 1', "options": {"payloadType": "application/super+json"}},
    )
    assert r.status_code == 400 and "SuperJSON" in r.json()["error"]
    r = c.post("/api/v1/tasks/t-echo/trigger", json={"options": {"delay": "soon"}})
    assert r.status_code == 422 and "duration" in r.json()["error"]
    r = c.post("/api/v1/tasks/t-echo/trigger", json={"payload": json.dumps({"a": "x\u0000"})})
    assert r.status_code == 422 and "payload.a contains a NUL" in r.json()["error"]

    limit = 4 * 1024 * 1024
    big = json.dumps({"payload": "x" * (limit + 10)}).encode()
    r = c.post("/api/v1/tasks/t-echo/trigger", content=big, headers=hdr)
    assert r.status_code == 413 and r.json()["limit"] == limit
    assert str(limit) in r.json()["error"]

    def chunks() -> Any:  # no content-length: counted as it streams
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    r = c.post("/api/v1/tasks/t-echo/trigger", content=chunks(), headers=hdr)
    assert r.status_code == 413

    r = c.post("/api/v1/tasks/no-such-task/trigger", json={"payload": "{}"})
    assert r.status_code == 404 and r.json() == {"error": "Task not found: no-such-task"}
    r = c.post("/api/v3/batches", json={"runCount": 2, "taskIdentifiers": ["nope"]})
    assert r.status_code == 404
    r = c.post("/api/v3/batches", json={"runCount": 0})
    assert r.status_code == 400
    batch = c.post("/api/v3/batches", json={"runCount": 2}).json()
    lines = [
        {
            "index": 0,
            "task": "t-echo",
            "payload": '{"json":1}',
            "options": {"payloadType": "application/super+json"},
        },
        {"index": 1, "task": "nope", "options": {}},
    ]
    nd = "".join(json.dumps(x) + "\n" for x in lines).encode()
    r = c.post(
        f"/api/v3/batches/{batch['id']}/items",
        content=nd,
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 422 and "nope" in r.json()["error"]
    r = c.post(
        f"/api/v3/batches/{batch['id']}/items",
        content=b"{bad\n",
        headers={"content-type": "application/x-ndjson"},
    )
    assert r.status_code == 400

    missing = "run_0000000000000000000000000z"
    assert c.get(f"/api/v3/runs/{missing}").status_code == 404
    assert c.post(f"/api/v2/runs/{missing}/cancel", headers=hdr).status_code == 404
    assert c.post(f"/api/v1/runs/{missing}/replay", headers=hdr).status_code == 404
    r = c.post(f"/api/v1/runs/{missing}/reschedule", json={"delay": "1h"})
    assert r.status_code == 404 and "Run not found" in r.json()["error"]
    r = c.post("/api/v1/waitpoints/tokens/waitpoint_nope/complete", json={"data": 1})
    assert r.status_code == 404

    for cron in ("not a cron", "61 * * * *", "* * * *"):
        r = c.post(
            "/api/v1/schedules",
            json={"task": "dash-scheduled", "cron": cron, "deduplicationKey": cron},
        )
        assert r.status_code == 422, (cron, r.text)
        assert "cron" in r.json()["error"]
    r = c.post("/api/v1/schedules", json={"task": "dash-scheduled", "cron": "* * * * *"})
    assert r.status_code == 400  # deduplicationKey is required, as on Trigger.dev

    assert (count(t.runs), count(t.schedules), count(t.api_batches)) == (
        before[0],
        before[1],
        before[2] + 1,
    )


@pytest.mark.timeout(120)
def test_retried_requests_create_nothing_twice(server: Server) -> None:
    c = server.client()
    key = {"x-trigger-request-idempotency-key": "5f0c2a57-retry-test"}
    body = {"payload": '{"json":{"a":1}}', "options": {"payloadType": "application/super+json"}}
    first = c.post("/api/v1/tasks/t-echo/trigger", json=body, headers=key)
    again = c.post("/api/v1/tasks/t-echo/trigger", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"id": first.json()["id"], "isCached": False}
    assert first.headers["x-trigger-jwt"].count(".") == 2
    assert len(runs.list(task="t-echo").data) == 1

    b1 = c.post("/api/v3/batches", json={"runCount": 3}, headers=key).json()
    b2 = c.post("/api/v3/batches", json={"runCount": 3}, headers=key).json()
    assert b1 == b2 and b1["isCached"] is False
    items = "".join(
        json.dumps(
            {
                "index": i,
                "task": "t-echo",
                "payload": json.dumps({"json": {"i": i}}),
                "options": {"payloadType": "application/super+json"},
            }
        )
        + "\n"
        for i in range(3)
    ).encode()
    nd = {"content-type": "application/x-ndjson"}
    part = c.post(
        f"/api/v3/batches/{b1['id']}/items", content=items.split(b"\n", 1)[0] + b"\n", headers=nd
    ).json()
    assert part["sealed"] is False and part["itemsAccepted"] == 1
    full = c.post(f"/api/v3/batches/{b1['id']}/items", content=items, headers=nd).json()
    assert full == {"id": b1["id"], "itemsAccepted": 2, "itemsDeduplicated": 1, "sealed": True}
    assert (
        c.post(f"/api/v3/batches/{b1['id']}/items", content=items, headers=nd).json()[
            "itemsDeduplicated"
        ]
        == 3
    )
    got = c.get(f"/api/v2/batches/{b1['id']}").json()
    assert len(got["runs"]) == 3 and got["status"] == "COMPLETED"

    t1 = c.post("/api/v1/waitpoints/tokens", json={}, headers=key).json()
    t2 = c.post("/api/v1/waitpoints/tokens", json={}, headers=key).json()
    assert t1["id"] == t2["id"]


@pytest.mark.timeout(120)
def test_auth_keys_csrf_and_logs(server: Server) -> None:
    wrong = "bjk_wrong-key-that-must-not-be-logged"
    r = server.client(key=wrong).get("/api/v1/runs")
    assert r.status_code == 401 and r.json() == {"error": "Invalid or missing API key"}
    assert server.client(key=None).post("/api/v1/tasks/t-echo/trigger", json={}).status_code == 401
    log = next(server.env.tmp.glob("dashboard-*.log")).read_text()
    assert "api_auth_failed" in log or "invalid or missing API key" in log
    assert wrong not in log and server.key not in log

    run_id = tasks.trigger("t-echo", {"x": 1}, delay="1h").id
    browser = login(server)
    r = browser.post(f"/runs/{run_id}/cancel", data={})  # no CSRF token
    assert r.status_code == 403
    r = browser.post(f"/runs/{run_id}/cancel", data={"csrf": "forged"})
    assert r.status_code == 403
    assert runs.retrieve(run_id).status == "DELAYED"
    r = browser.post(f"/runs/{run_id}/cancel", data={"csrf": browser.cookies["bj_csrf"]})
    assert r.status_code == 303
    wait_for(lambda: runs.retrieve(run_id).status == "CANCELED")

    # revoking the key ends API access and its browser sessions
    from dashboard.auth import hash_key
    from runtime.store import dashboard as sql

    row = sql.find_api_key(get_runtime().store, hash_key(server.key))
    assert row is not None and sql.revoke_api_key(get_runtime().store, row["id"])
    assert browser.get("/runs").status_code == 303  # back to the login page
    wait_for(lambda: server.client().get("/api/v1/runs").status_code == 401, timeout=10)


@pytest.mark.timeout(120)
def test_trusted_header_and_health(server: Server) -> None:
    from tests.dashboard.conftest import start_dashboard

    url, _ = start_dashboard(server.env, dashboard_trusted_header="X-Forwarded-Email")
    r = httpx.get(url + "/runs", headers={"X-Forwarded-Email": "ops@example.com"})
    assert r.status_code == 200 and "ops@example.com" in r.text
    assert httpx.get(url + "/runs", follow_redirects=False).status_code == 303
    assert httpx.get(url + "/readyz").json() == {"status": "ok", "store": "ok"}
    metrics = httpx.get(url + "/metrics").text
    for name in (
        "buster_runs",
        "buster_queue_ready",
        "buster_timer_lag_seconds",
        "buster_runs_waiting",
        "buster_workers_online",
    ):
        assert f"# TYPE {name} gauge" in metrics
    doc = httpx.get(url + "/api/openapi.json").json()
    assert "/api/v1/tasks/{task_id}/trigger" in doc["paths"] and doc["openapi"] == "3.1.0"


@pytest.mark.timeout(120)
def test_token_data_over_the_output_limit_is_413_and_completes_nothing(server: Server) -> None:
    """A token's data is held to ``max_output_bytes`` like a run's output; over HTTP the
    refusal is a 413 naming the limit, and the token still waits."""
    from tests.dashboard.conftest import start_dashboard

    url, _ = start_dashboard(server.env, max_output_bytes=64)
    c = httpx.Client(base_url=url, headers={"authorization": f"Bearer {server.key}"}, timeout=30)
    token = c.post("/api/v1/waitpoints/tokens", json={}).json()["id"]
    r = c.post(f"/api/v1/waitpoints/tokens/{token}/complete", json={"data": "x" * 63})
    assert r.status_code == 413
    assert r.json()["error"] == "data is 65 bytes, larger than the 64 byte limit"
    assert c.get(f"/api/v1/waitpoints/tokens/{token}").json()["status"] == "WAITING"
    r = c.post(f"/api/v1/waitpoints/tokens/{token}/complete", json={"data": "x" * 62})
    assert r.status_code == 200 and r.json() == {"success": True}
    assert c.get(f"/api/v1/waitpoints/tokens/{token}").json()["status"] == "COMPLETED"


@pytest.mark.timeout(120)
def test_a_10_mb_output_is_shown_cut_on_the_run_page_and_whole_by_the_api(
    server: Server,
) -> None:
    from dashboard.pages.render import PRETTY_MAX_CHARS

    run = wait_final(tasks.trigger("t-big-output", {"mode": "at"}).id, timeout=60)
    assert run.status == "COMPLETED"
    size = len(run.output["blob"])
    page = login(server).get(f"/runs/{run.id}")
    assert page.status_code == 200
    shown = page.text.split('<pre id="output">', 1)[1].split("</pre>", 1)[0]
    # '{\n  "blob": "' + the string + '"\n}' indented, cut at the limit
    left_out = len('{\n  "blob": ""\n}') + size - PRETTY_MAX_CHARS
    assert shown.endswith(
        f"\n… [{left_out:,} more characters not shown: buster-jobs runs show &lt;id&gt; or "
        "GET /api/v3/runs/&lt;id&gt; gives the whole value]"
    )
    assert len(page.text) < 2 * PRETTY_MAX_CHARS
    api = server.client().get(f"/api/v3/runs/{run.id}").json()
    assert len(api["output"]["blob"]) == size
