"""Run webhook endpoints over HTTP and on the Tasks page (dashboard/api/run_webhooks.py):
added, listed and removed at runtime by a real dashboard process, with a real receiver; no
answer or page ever holds an endpoint's URL or secret."""

from __future__ import annotations

import html
import json
import time
import uuid

from runtime import RunStatus, tasks
from tests.helpers import wait_final, wait_for
from tests.integration.test_run_webhooks import SECRET, Receiver

from .conftest import Server
from .test_api_safety import login


def test_endpoints_are_added_listed_and_removed_over_http(server: Server) -> None:
    receiver = Receiver()
    token = uuid.uuid4().hex
    api = server.client()
    body = {"name": "pager", "url": f"{receiver.url}/pager/{token}", "secret": SECRET,
            "statuses": ["FAILED"], "maxAttempts": 3}
    r = api.post("/api/v1/run-webhooks", json=body)
    assert r.status_code == 201, r.text
    assert (r.json()["name"], r.json()["host"], r.json()["signed"], r.json()["maxAttempts"]) == (
        "pager", "127.0.0.1", True, 3)
    assert api.post("/api/v1/run-webhooks", json=body).status_code == 409
    listed = api.get("/api/v1/run-webhooks").json()["data"]
    assert [(e["name"], e["source"]) for e in listed] == [("pager", "stored")]
    doc = api.get("/api/openapi.json").json()
    assert {"get", "post"} <= set(doc["paths"]["/api/v1/run-webhooks"])
    schema = doc["components"]["schemas"]["RunWebhook"]["properties"]
    assert set(listed[0]) == set(schema), set(listed[0]) ^ set(schema)
    asked = doc["components"]["schemas"]["CreateRunWebhookRequest"]["properties"]
    assert set(body) <= set(asked)
    # a failed run on the worker process (which reads the endpoints every 0.3 s here)
    time.sleep(1.0)
    failed = tasks.trigger("t-child", {"fail": True, "i": 9})
    assert wait_final(failed.id, timeout=60).status == RunStatus.FAILED
    wait_for(lambda: receiver.to(f"/pager/{token}"), timeout=30)
    assert json.loads(receiver.to(f"/pager/{token}")[0]["body"])["data"]["run"]["id"] == failed.id

    # refused, and said why without the values
    bad = [({**body, "name": "x", "url": f"ftp://h/{token}"}, 422, "http:// or https://"),
           ({**body, "name": "x", "secret": f"s{token}"}, 422, "secret"),
           ({**body, "name": "x", "colour": token}, 400, "unknown field(s) colour"),
           ({"name": "x"}, 400, "url (a string) is required"),
           ({**body, "name": "x", "tags": token}, 422, "tags must be a list")]
    for sent, status, said in bad:
        r = api.post("/api/v1/run-webhooks", json=sent)
        assert r.status_code == status and said in r.json()["error"], r.text
        assert token not in r.text and SECRET not in r.text
    assert server.client(key=None).get("/api/v1/run-webhooks").status_code == 401

    # the Tasks page shows it as added at runtime, and removes it
    browser = login(server)
    page = html.unescape(browser.get("/tasks").text)
    assert "pager <small>(added at runtime)</small>" in page and token not in page
    r = browser.post("/run-webhooks/pager/remove", data={"csrf": browser.cookies["bj_csrf"]},
                     follow_redirects=True)
    assert "pager removed" in html.unescape(r.text)
    assert api.get("/api/v1/run-webhooks").json()["data"] == []
    r = api.delete("/api/v1/run-webhooks/pager")
    assert r.status_code == 404 and "no stored run webhook" in r.json()["error"]
    api.post("/api/v1/run-webhooks", json=body)
    r = api.delete("/api/v1/run-webhooks/pager")
    assert r.status_code == 200 and r.json() == {"name": "pager", "removed": True}
    receiver.server.shutdown()
