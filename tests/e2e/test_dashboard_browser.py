"""The dashboard in headless Chromium (Debian's, driven by Playwright): sign in, filter
the runs list, open a run, watch its metadata change live over SSE, cancel it.
Screenshots land in ``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime import RunStatus, runs, tasks
from tests.dashboard.conftest import ARTIFACTS, Server, chromium_path, server  # noqa: F401
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _step(page: Any) -> int:
    return int(json.loads(page.inner_text("#metadata")).get("step", -1))


@pytest.mark.timeout(240)
def test_filter_open_watch_live_and_cancel(server: Server) -> None:  # noqa: F811
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    for i in range(3):
        tasks.trigger("t-echo", {"i": i}, tags=["ui"])
    live = tasks.trigger("dash-progress", {"steps": 300, "interval": 0.3}, tags=["ui", "live"])
    wait_for(lambda: runs.retrieve(live.id).metadata.get("step", -1) >= 1, timeout=30)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(server.url + "/runs")
            assert "/login" in page.url  # pages need a session
            page.fill("input[name=api_key]", server.key)
            page.click("button[type=submit]")
            page.wait_for_url("**/runs")
            page.screenshot(path=str(ARTIFACTS / "01-runs.png"), full_page=True)

            # filter: only the live task's runs
            page.select_option("#filter-task", "dash-progress")
            page.click("#apply-filters")
            page.wait_for_url("**task=dash-progress**")
            tasks_shown = page.eval_on_selector_all(
                "tr.run td:nth-child(2)", "els => els.map(e => e.textContent)"
            )
            assert tasks_shown == ["dash-progress"]
            page.screenshot(path=str(ARTIFACTS / "02-filtered.png"), full_page=True)

            # open the run and watch its metadata change without reloading
            page.click(f"a[href='/runs/{live.id}']")
            page.wait_for_url(f"**/runs/{live.id}")
            first = _step(page)
            page.wait_for_function(
                "s => JSON.parse(document.querySelector('#metadata').textContent).step >= s",
                arg=first + 3,
                timeout=20_000,
            )
            assert _step(page) >= first + 3
            assert page.inner_text("#run-status") == "EXECUTING"
            page.screenshot(path=str(ARTIFACTS / "03-run-live.png"), full_page=True)

            page.click("#cancel")
            page.wait_for_selector("#run-status:has-text('CANCELED')", timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "04-canceled.png"), full_page=True)
        finally:
            browser.close()
    assert wait_for(lambda: runs.retrieve(live.id).status == RunStatus.CANCELED, timeout=20)
