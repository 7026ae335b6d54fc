"""Task queues over HTTP: Trigger.dev's queues API (list, retrieve, pause/resume, override,
reset) and the Queues page's buttons, against a real dashboard, worker, Postgres and RabbitMQ."""

from __future__ import annotations

import html

import pytest

from runtime import RunStatus, queues, runs, tasks
from tests.helpers import wait_final, wait_for

from .conftest import Server
from .test_api_safety import login

pytestmark = pytest.mark.integration


def test_queues_api_pauses_overrides_and_resets(server: Server) -> None:
    c = server.client()
    listed = c.get("/api/v1/queues")
    assert listed.status_code == 200, listed.text
    names = [q["name"] for q in listed.json()["data"]]
    assert {"t-echo", "t-limited"} <= set(names)

    r = c.get("/api/v1/queues/queue_t-limited")
    assert r.status_code == 200, r.text
    q = r.json()
    assert (q["id"], q["type"], q["paused"], q["concurrencyLimit"]) == (
        "queue_t-limited", "task", False, 2)
    assert q["concurrency"] == {"current": 2, "base": 2, "override": None,
                                "overriddenAt": None, "overriddenBy": None}
    assert c.get("/api/v1/queues/t-limited", params={"type": "task"}).json()["id"] == (
        "queue_t-limited")

    # the Node SDK's queues.pause({type: "task", name}) sends this
    r = c.post("/api/v1/queues/t-echo/pause", json={"type": "task", "action": "pause"})
    assert r.status_code == 200, r.text
    assert r.json()["paused"] is True
    held = tasks.trigger("t-echo", {"x": 1})
    wait_for(lambda: runs.retrieve(held.id).waiting_for_slot, timeout=30)
    assert c.get("/api/v1/queues/queue_t-echo").json()["queued"] == 1
    browser = login(server)
    page = html.unescape(browser.get(f"/runs/{held.id}").text)
    assert "The queue of task “t-echo” is paused by api:tests" in page
    slots = html.unescape(browser.get("/queues").text).split('id="slots"', 1)[1]
    assert ">t-echo</a></td><td>—</td><td>paused</td><td>0</td><td>1</td>" in slots
    metrics = c.get("/metrics").text
    assert 'buster_task_queue_paused{task="t-echo"} 1' in metrics, metrics
    assert 'buster_runs_waiting_for_slot{task="t-echo"} 1' in metrics, metrics
    r = c.post("/api/v1/queues/queue_t-echo/pause", json={"action": "resume"})
    assert r.status_code == 200 and r.json()["paused"] is False
    assert wait_final(held.id, timeout=30).status == RunStatus.COMPLETED

    r = c.post("/api/v1/queues/queue_t-limited/concurrency/override",
               json={"concurrencyLimit": 7})
    assert r.status_code == 200, r.text
    conc = r.json()["concurrency"]
    assert (r.json()["concurrencyLimit"], conc["base"], conc["override"]) == (7, 2, 7)
    assert conc["overriddenBy"] == "api:tests" and conc["overriddenAt"]
    assert 'buster_task_queue_concurrency_override{task="t-limited"} 7' in (
        c.get("/metrics").text)
    # ours: the total over all the task's keys, alone or with the per-key limit
    r = c.post("/api/v1/queues/queue_t-limited/concurrency/override",
               json={"totalConcurrencyLimit": 3})
    assert r.status_code == 200, r.text
    assert r.json()["totalConcurrency"] == {"current": 3, "base": None, "override": 3}
    assert r.json()["concurrencyLimit"] == 7  # the per-key override stays
    assert queues.retrieve("t-limited").total_override == 3
    r = c.post("/api/v1/queues/t-limited/concurrency/override",
               json={"type": "task", "concurrencyLimit": 4, "totalConcurrencyLimit": 5})
    assert r.status_code == 200, r.text
    assert (r.json()["concurrencyLimit"], r.json()["totalConcurrency"]["current"]) == (4, 5)
    r = c.post("/api/v1/queues/queue_t-limited/concurrency/reset", json={})
    assert r.status_code == 200 and r.json()["concurrencyLimit"] == 2
    assert r.json()["totalConcurrency"] == {"current": None, "base": None, "override": None}

    # bad input: a clear 4xx, and nothing changed
    for path, body, status in [
        ("/api/v1/queues/queue_t-limited/concurrency/override", {"concurrencyLimit": -1}, 422),
        ("/api/v1/queues/queue_t-limited/concurrency/override", {"concurrencyLimit": "3"}, 422),
        ("/api/v1/queues/queue_t-limited/concurrency/override", {}, 422),
        ("/api/v1/queues/queue_t-limited/concurrency/override",
         {"totalConcurrencyLimit": 100_001}, 422),
        ("/api/v1/queues/queue_t-limited/concurrency/override",
         {"concurrencyLimit": 3, "totalConcurrencyLimit": "all"}, 422),
        ("/api/v1/queues/queue_t-limited/pause", {"action": "stop"}, 400),
        ("/api/v1/queues/queue_no-such-task/pause", {"action": "pause"}, 404),
        ("/api/v1/queues/no-such-task/pause", {"type": "task", "action": "pause"}, 404),
        ("/api/v1/queues/t-limited/pause", {"action": "pause"}, 404),  # not an id
        ("/api/v1/queues/t-limited/pause", {"type": "custom", "action": "pause"}, 404),
    ]:
        r = c.post(path, json=body)
        assert r.status_code == status, (path, body, r.status_code, r.text)
        assert "error" in r.json()
    q = queues.retrieve("t-limited")
    assert (q.paused, q.override, q.total_override) == (False, None, None)
    assert server.client(key=None).get("/api/v1/queues").status_code == 401
    doc = c.get("/api/openapi.json").json()
    assert "/api/v1/queues/{queue}/concurrency/override" in doc["paths"]
    queue_schema = doc["components"]["schemas"]["Queue"]["properties"]
    assert queue_schema["type"]["enum"] == ["task", "custom"]
    answered = c.get("/api/v1/queues/queue_t-limited").json()
    assert set(answered) <= set(queue_schema), set(answered) - set(queue_schema)


def test_queues_page_pauses_resumes_and_overrides(server: Server) -> None:
    browser = login(server)
    csrf = browser.cookies["bj_csrf"]
    r = browser.post("/queues/t-echo/pause", data={"csrf": csrf})
    assert r.status_code == 303
    assert queues.retrieve("t-echo").paused
    page = html.unescape(browser.get("/queues").text)
    row = page.split('id="task-queues"', 1)[1].split("</table>", 1)[0]
    echo = row.split('href="/runs?task=t-echo"', 1)[1].split("</tr>", 1)[0]
    assert "paused</strong> by dashboard:" in echo and ">Resume</button>" in echo

    r = browser.post("/queues/t-echo/override", data={"csrf": csrf, "limit": "3"})
    assert r.status_code == 303 and queues.retrieve("t-echo").override == 3
    r = browser.post("/queues/t-echo/override", data={"csrf": csrf, "limit": "many"},
                     follow_redirects=True)
    assert "whole number" in html.unescape(r.text)
    assert queues.retrieve("t-echo").override == 3
    r = browser.post("/queues/t-echo/override-total", data={"csrf": csrf, "limit": "4"})
    assert r.status_code == 303 and queues.retrieve("t-echo").total_override == 4
    page = html.unescape(browser.get("/queues").text).split('id="task-queues"', 1)[1]
    echo = page.split('href="/runs?task=t-echo"', 1)[1].split("</tr>", 1)[0]
    assert "<td>3 per key, 4 in all (overridden by dashboard:" in echo, echo
    assert browser.post("/queues/t-echo/resume", data={}).status_code == 403  # no CSRF
    assert queues.retrieve("t-echo").paused
    browser.post("/queues/t-echo/resume", data={"csrf": csrf})
    browser.post("/queues/t-echo/reset", data={"csrf": csrf})
    q = queues.retrieve("t-echo")
    assert (q.paused, q.override, q.total_override) == (False, None, None)
    listing = html.unescape(browser.get("/tasks").text)
    assert "≤ 1 at once per key, ≤ 2 in all" in listing  # t-limited-total
    r = browser.post("/queues/no-such-task/pause", data={"csrf": csrf}, follow_redirects=True)
    assert "no queue 'no-such-task'" in html.unescape(r.text)


def test_a_shared_queue_over_http_and_on_the_queues_page(server: Server) -> None:
    c = server.client()
    listed = {q["name"]: q for q in c.get("/api/v1/queues").json()["data"]}
    assert "t-shared-a" not in listed  # in the shared queue, not one of its own
    shared = listed["t-shared"]
    assert (shared["id"], shared["type"], shared["tasks"], shared["concurrencyLimit"]) == (
        "queue_t-shared", "custom", ["t-shared-a", "t-shared-b"], 1)
    r = c.get("/api/v1/queues/t-shared", params={"type": "custom"})
    assert r.status_code == 200 and r.json()["id"] == "queue_t-shared", r.text
    assert c.get("/api/v1/queues/t-shared", params={"type": "task"}).status_code == 404
    # holding one task's id would hold the other task's runs: refused, nothing held
    r = c.post("/api/v1/queues/t-shared-a/pause", json={"type": "task", "action": "pause"})
    assert r.status_code == 409 and "t-shared" in r.json()["error"], r.text
    assert not queues.retrieve("t-shared").paused

    r = c.post("/api/v1/queues/t-shared/pause", json={"type": "custom", "action": "pause"})
    assert r.status_code == 200 and r.json()["paused"] is True, r.text
    held = tasks.trigger("t-shared-b", {"seconds": 0.05})
    wait_for(lambda: runs.retrieve(held.id).waiting_for_slot, timeout=30)
    browser = login(server)
    page = html.unescape(browser.get(f"/runs/{held.id}").text)
    assert "The shared queue “t-shared” is paused by api:tests" in page
    page = html.unescape(browser.get("/queues").text)
    row = page.split('id="task-queues"', 1)[1].split("</table>", 1)[0]
    shared_row = row.split('<tr><td><a href="/runs?queue=t-shared">t-shared</a> <small>(shared: ',
                           1)[1].split("</tr>", 1)[0]
    assert ">t-shared-a</a>, <a" in shared_row and ">Resume</button>" in shared_row
    slots = page.split('id="slots"', 1)[1]
    assert ('<a href="/runs?queue=t-shared">t-shared</a> <small>(shared)</small></td><td>—</td>'
            "<td>paused</td><td>0</td><td>1<") in slots
    assert 'buster_runs_waiting_for_slot{task="t-shared"} 1' in c.get("/metrics").text
    # the queue's runs, over HTTP (Trigger.dev's filter[queue]) and on the Runs page
    other = tasks.trigger("t-echo", {"x": 2}, delay="1h")
    listed = c.get("/api/v1/runs", params={"filter[queue]": "t-shared"}).json()["data"]
    assert [r["id"] for r in listed] == [held.id]
    r = c.post("/api/v1/runs/bulk", json={"action": "cancel", "dryRun": True,
                                          "filter": {"queue": ["t-shared"]}})
    assert (r.status_code, r.json()["count"]) == (200, 1), r.text
    assert 'href="/runs?queue=t-shared"' in page
    runs_page = html.unescape(browser.get("/runs", params={"queue": "t-shared"}).text)
    assert held.id in runs_page and other.id not in runs_page
    # its bulk buttons act on the same filtered list
    assert '<input type="hidden" name="queue" value="t-shared">' in runs_page
    runs.cancel(other.id)
    csrf = browser.cookies["bj_csrf"]
    assert browser.post("/queues/t-shared/resume", data={"csrf": csrf}).status_code == 303
    assert wait_final(held.id, timeout=30).status == RunStatus.COMPLETED
    listing = html.unescape(browser.get("/tasks").text)
    assert "≤ 1 at once in shared queue t-shared" in listing
    # the Node SDK's trigger(…, {queue: "t-shared"}) sends the queue as {name}
    r = c.post("/api/v1/tasks/t-traced/trigger",
               json={"payload": {}, "options": {"queue": {"name": "t-shared"}}})
    assert r.status_code == 200, r.text
    run = server_run(r.json()["id"])
    assert (run["concurrency_queue"], run["concurrency_limit"]) == ("t-shared", 1)
    assert wait_final(r.json()["id"], timeout=30).status == RunStatus.COMPLETED


def server_run(run_id: str) -> dict:
    from runtime import get_runtime

    row = get_runtime().store.get_run(run_id)
    assert row is not None
    return dict(row)
