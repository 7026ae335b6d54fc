"""The run page says what an unfinished run waits for, from the run row as the store has it."""

from __future__ import annotations

import html
import time

import pytest

from runtime import tasks

from .conftest import Server
from .test_api_safety import login

pytestmark = pytest.mark.integration


def test_run_page_says_why_a_run_has_not_started(server: Server):
    browser = login(server)
    # no worker has this task: the run waits in PENDING_VERSION
    pending = tasks.trigger("dash-no-such-task", {})
    page = html.unescape(browser.get(f"/runs/{pending.id}").text)
    assert 'id="run-why"' in page
    assert "No worker has registered task “dash-no-such-task” yet" in page
    # a delayed run gives its delay, read back from Postgres (an aware timestamp)
    delayed = tasks.trigger("t-echo", {}, delay="2h", ttl="3h")
    page = html.unescape(browser.get(f"/runs/{delayed.id}").text)
    assert "Delayed until " in page and "by its trigger" in page


def test_limited_tasks_show_their_limit_and_a_run_its_key(server: Server):
    from tests.helpers import wait_final

    browser = login(server)
    run = wait_final(tasks.trigger("t-limited", {"i": 1}, concurrency_key="org-7").id,
                     timeout=60)
    page = html.unescape(browser.get(f"/runs/{run.id}").text)
    assert "concurrency ≤ 2 per key, key <code>org-7</code>" in page
    listing = html.unescape(browser.get("/tasks").text)
    assert "≤ 2 at once" in listing


def test_queues_page_counts_runs_waiting_for_a_concurrency_slot(server: Server):
    from tests.helpers import wait_final, wait_for

    browser = login(server)
    # limit 1, 1 s each: while the first runs, the others wait for its slot
    handles = [tasks.trigger("t-limited-one", {"seconds": 1.0}, concurrency_key="acme")
               for _ in range(3)]

    def waiting_shown() -> bool:
        page = html.unescape(browser.get("/queues").text)
        row = page.split('id="slots"', 1)[1].split("</table>", 1)[0]
        return "<td>acme</td><td>1</td><td>1</td><td>2</td>" in row

    wait_for(waiting_shown, timeout=30, interval=0.2)
    for h in handles:
        wait_final(h.id, timeout=60)
    page = html.unescape(browser.get("/queues").text)
    assert "No run of a task with a concurrency limit is executing or queued." in page


def test_runs_page_bulk_actions_act_on_what_the_filters_match(server: Server):
    import uuid

    from runtime import RunStatus, runs

    browser = login(server)
    tag, other = f"bulk:{uuid.uuid4().hex[:8]}", f"bulk:{uuid.uuid4().hex[:8]}"
    mine = [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=[tag]).id for i in range(3)]
    theirs = tasks.trigger("t-echo", {}, delay="1h", tags=[other]).id
    csrf = browser.cookies["bj_csrf"]
    r = browser.post("/runs/bulk", data={"csrf": csrf, "action": "cancel", "tag": tag},
                     follow_redirects=True)
    assert r.status_code == 200 and "3 runs canceled" in html.unescape(r.text)
    assert {runs.retrieve(i).status for i in mine} == {RunStatus.CANCELED}
    assert runs.retrieve(theirs).status == RunStatus.DELAYED
    r = browser.post("/runs/bulk", data={"csrf": csrf, "action": "replay", "tag": tag,
                                         "status": "CANCELED"}, follow_redirects=True)
    assert "3 runs replayed" in html.unescape(r.text)
    assert len(runs.list(tag=tag, status="CANCELED").data) == 3
    assert browser.post("/runs/bulk", data={"csrf": csrf, "action": "delete"}).status_code == 400
    runs.bulk_cancel(tag=[tag, other])


def test_a_truncated_bulk_replay_goes_on_below_where_it_stopped(server: Server):
    """With more matching runs than ``bulk_limit``, the page offers to go on from where
    the action stopped: clicking Replay again would replay the newest runs twice."""
    import re
    import uuid

    from runtime import RunStatus, runs
    from tests.helpers import wait_final

    from .conftest import start_dashboard

    url, _ = start_dashboard(server.env, dashboard_bulk_limit=2)
    browser = login(Server(url, server.key, server.env, server.proc))
    tag = f"bulk:{uuid.uuid4().hex[:8]}"
    mine = [tasks.trigger("t-echo", {"i": i}, delay="1h", tags=[tag]).id for i in range(3)]
    runs.bulk_cancel(tag=tag)
    csrf = browser.cookies["bj_csrf"]
    form = {"csrf": csrf, "action": "replay", "tag": tag, "status": "CANCELED"}
    r = browser.post("/runs/bulk", data=form, follow_redirects=True)
    page = html.unescape(r.text)
    assert "2 runs replayed; more match (at most 2 at a time)" in page
    go_on = re.search(r'name="after" value="(run_\w+)">\s*<button name="action" '
                      r'value="replay" id="bulk-go-on">', page)
    assert go_on is not None and go_on.group(1) == mine[1], page
    r = browser.post("/runs/bulk", data={**form, "after": go_on.group(1)},
                     follow_redirects=True)
    page = html.unescape(r.text)
    assert "1 runs replayed" in page and 'id="bulk-go-on"' not in page
    replays = [r for r in runs.list(tag=tag).data if r.replayed_from]
    assert sorted(r.replayed_from for r in replays) == sorted(mine)  # each once
    assert {wait_final(r.id).status for r in replays} == {RunStatus.COMPLETED}
    assert browser.post("/runs/bulk", data={**form, "after": "x"}).status_code == 400


def test_run_page_and_metrics_show_run_webhook_deliveries(server: Server):
    import runtime
    from runtime import runs
    from runtime.timer import TimerLoop

    token = "s3cr3t-path-token"
    rt = runtime.configure(**server.env.settings, run_webhooks={
        "ops": {"url": f"https://hooks.example.com/{token}", "statuses": ["CANCELED"]}})
    run = tasks.trigger("t-echo", {}, delay="1h")
    runs.cancel(run.id)
    # recorded once; not started, so never posted. The server's worker may hold the row a
    # moment (its timer sends the cancel's hooks, FOR UPDATE), and the recording skips a
    # locked run until a later tick: tick until it is recorded, and count what each records
    loop, recorded, deadline = TimerLoop(rt), 0, time.monotonic() + 10
    while not recorded and time.monotonic() < deadline:
        recorded += loop.tick()["notify"]
        time.sleep(0 if recorded else 0.05)
    assert recorded == 1 and loop.tick()["notify"] == 0
    browser = login(server)
    page = html.unescape(browser.get(f"/runs/{run.id}").text)
    table = page.split('id="run-webhooks"', 1)[1].split("</table>", 1)[0]
    assert "<td>ops</td><td>CANCELED</td><td>pending</td><td>0</td><td>—</td>" in table
    assert token not in page
    metrics = server.client().get("/metrics").text
    assert 'buster_run_webhook_deliveries{endpoint="ops",status="pending"} 1' in metrics

    # A dashboard configured with the endpoint lists it on the Tasks page (host only),
    # sends it a test, and requeues its failed deliveries.
    import json

    from sqlalchemy import update

    from runtime import run_webhooks
    from runtime.store import tables as t
    from tests.integration.test_run_webhooks import Receiver

    from .conftest import start_dashboard

    receiver = Receiver()
    url, _ = start_dashboard(server.env, run_webhooks=json.dumps(
        {"ops": {"url": f"{receiver.url}/{token}", "statuses": ["CANCELED"]}}))
    other = login(Server(url, server.key, server.env, server.proc))
    page = html.unescape(other.get("/tasks").text)
    table = page.split('id="run-webhook-endpoints"', 1)[1].split("</table>", 1)[0]
    assert ("<td>ops</td><td>127.0.0.1</td><td>standard</td><td>CANCELED</td>\n"
            "<td>every task</td>\n<td>1 pending</td>") in table
    assert token not in page and "Retry failed" not in table
    csrf = other.cookies["bj_csrf"]
    r = other.post("/run-webhooks/ops/test", data={"csrf": csrf}, follow_redirects=True)
    assert "Test of ops (127.0.0.1) delivered" in html.unescape(r.text)
    assert json.loads(receiver.to(f"/{token}")[0]["body"])["type"] == "run.test"
    with rt.store.engine.begin() as conn:  # as if every attempt had failed
        conn.execute(update(t.run_webhook_deliveries).values(status="failed", attempts=8))
    assert "Retry failed" in other.get("/tasks").text
    r = other.post("/run-webhooks/ops/retry", data={"csrf": csrf}, follow_redirects=True)
    assert "1 failed deliveries of ops requeued" in html.unescape(r.text)
    assert [(d["status"], d["attempts"]) for d in run_webhooks.deliveries(rt.store, run.id)
            ] == [("pending", 0)]
    assert other.post("/run-webhooks/ops/retry", data={}).status_code == 403  # no CSRF
    r = other.post("/run-webhooks/nope/test", data={"csrf": csrf}, follow_redirects=True)
    assert "No run webhook named 'nope'" in html.unescape(r.text)
    receiver.server.shutdown()
