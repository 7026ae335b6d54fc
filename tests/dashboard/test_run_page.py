"""The run page says what an unfinished run waits for, from the run row as the store has it."""

from __future__ import annotations

import html

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
