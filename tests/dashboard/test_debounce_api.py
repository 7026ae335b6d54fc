"""Debounced triggers over HTTP (``options.debounce`` as the SDK sends it), against a real
dashboard, worker, Postgres and RabbitMQ."""

from __future__ import annotations

import html
import json

import pytest

from runtime import RunStatus, runs
from tests.helpers import wait_final

from .conftest import Server
from .test_api_safety import login

pytestmark = pytest.mark.integration


def _trigger(c: object, payload: object, **options: object) -> object:
    return c.post("/api/v1/tasks/t-echo/trigger",  # type: ignore[attr-defined]
                  json={"payload": json.dumps(payload), "options": options})


def test_debounce_over_http_pushes_one_run(server: Server) -> None:
    c = server.client()
    first = _trigger(c, {"n": 1}, tags=["http-debounce"],
                     debounce={"key": "u-1", "delay": "1s", "mode": "trailing",
                               "maxDelay": "1m"})
    assert first.status_code == 200, first.text
    second = _trigger(c, {"n": 2}, tags=["http-debounce"],
                      debounce={"key": "u-1", "delay": "1s", "mode": "trailing",
                                "maxDelay": "1m"})
    assert second.status_code == 200, second.text
    assert first.json() == {"id": first.json()["id"], "isCached": False}
    assert second.json()["id"] == first.json()["id"]
    run = runs.retrieve(first.json()["id"])
    assert run.status == RunStatus.DELAYED and run.debounce_key == "u-1"
    done = wait_final(run.id, timeout=60)
    assert done.status == RunStatus.COMPLETED
    assert done.output == {"echo": {"n": 2}}  # trailing: the last request's payload
    assert len(runs.list(tag="http-debounce")) == 1

    # the run page says why a debounced run has not started
    later = _trigger(c, {}, debounce={"key": "page-key", "delay": "1h", "maxDelay": "2h"})
    page = html.unescape(login(server).get(f"/runs/{later.json()['id']}").text)
    assert "Debounced until" in page and "with key “page-key” pushes the start later" in page

    before = len(runs.list(task="t-echo", limit=100))
    bad = _trigger(c, {}, debounce={"key": "u-2", "delay": "0s"})
    assert bad.status_code == 422 and "debounce.delay" in bad.json()["error"], bad.text
    bad = _trigger(c, {}, debounce={"delay": "1s"})
    assert bad.status_code == 400 and "debounce.key" in bad.json()["error"], bad.text
    bad = _trigger(c, {}, debounce={"key": "u-3", "delay": "1s", "mode": "both"})
    assert bad.status_code == 422 and "debounce.mode" in bad.json()["error"], bad.text
    assert len(runs.list(task="t-echo", limit=100)) == before
