"""Runs waiting for a queue nothing declared (runtime/pending_queues.py), as ops see them: the
Queues page, /metrics and the run page, from a real dashboard process."""

from __future__ import annotations

import html

import httpx

from runtime import RunStatus, runs, tasks

from .conftest import Server
from .test_api_safety import login


def test_ops_see_runs_waiting_for_an_undeclared_queue(server: Server) -> None:
    waiting = [tasks.trigger("t-echo", {"i": i}, queue="reprots") for i in range(2)]
    assert {runs.retrieve(h.id).status for h in waiting} == {RunStatus.PENDING_VERSION}
    browser = login(server)
    page = html.unescape(browser.get("/queues").text)
    table = page.split('id="undeclared-queues"', 1)[1].split("</table>", 1)[0]
    assert '<td><code>reprots</code></td><td><a href="/runs?status=PENDING_VERSION">2</a>' in table
    metrics = httpx.get(server.url + "/metrics").text
    assert 'buster_runs_waiting_for_undeclared_queue{queue="reprots"} 2' in metrics
    run_page = html.unescape(browser.get(f"/runs/{waiting[0].id}").text)
    assert "Its trigger named queue “reprots”, which no task, worker or queue()" in run_page
    runs.cancel(waiting[0].id)
    metrics = httpx.get(server.url + "/metrics").text
    assert 'buster_runs_waiting_for_undeclared_queue{queue="reprots"} 1' in metrics
