"""Run webhook endpoints added at runtime (runtime/run_webhook_endpoints.py): posted to like
those of ``BUSTER_RUN_WEBHOOKS`` with no restart — by this process at once, by the others
within their refresh —, stored encrypted, and never shown or logged with their URL or
secret. A real HTTP receiver, on both tiers, and a worker in another process."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from runtime import RunStatus, get_runtime, runs, tasks
from runtime import run_webhook_endpoints as endpoints
from runtime import run_webhooks as rw
from runtime.store import tables as t
from tests.helpers import wait_final, wait_for
from tests.integration.test_run_webhooks import SECRET, Receiver, _configure, _delivered


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _stored_bytes() -> bytes:
    with get_runtime().store.engine.connect() as conn:
        rows = conn.execute(select(t.run_webhook_endpoints)).all()
    return b"".join(bytes(r.config) + str(tuple(r)).encode() for r in rows)


def test_an_endpoint_added_at_runtime_is_posted_to_until_removed(
        env: Any, worker: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    from dashboard.api.webhooks import _standard

    caplog.set_level(logging.INFO, logger="buster.run_webhooks")
    token = uuid.uuid4().hex
    shown = endpoints.add("oncall", f"{receiver.url}/hook/{token}", secret=SECRET,
                          statuses=["FAILED", "CANCELED"], by="ops:test")
    assert (shown["name"], shown["source"], shown["host"], shown["signed"]) == (
        "oncall", "stored", "127.0.0.1", True)
    assert token not in json.dumps(shown) and SECRET not in json.dumps(shown)
    # stored encrypted: neither the URL's path nor the secret is in the table
    stored = _stored_bytes()
    assert stored and token.encode() not in stored and SECRET.encode() not in stored

    failed = tasks.trigger("t-child", {"fail": True, "i": 3})
    assert wait_final(failed.id).status == RunStatus.FAILED
    [delivery] = _delivered(failed.id)
    assert (delivery["endpoint"], delivery["status"]) == ("oncall", "delivered")
    [post] = receiver.to(f"/hook/{token}")
    headers = {k.lower(): v for k, v in post["headers"].items()}
    assert _standard(SECRET, post["body"], headers, time.time(), 300) == f"{failed.id}.oncall"
    # a status it does not want: nothing
    done = tasks.trigger("t-echo", {"x": 1})
    assert wait_final(done.id).status == RunStatus.COMPLETED
    time.sleep(0.5)
    assert rw.deliveries(get_runtime().store, done.id) == []

    # the name is taken; replaced, it takes completed runs instead
    with pytest.raises(endpoints.RunWebhookExistsError, match="exists"):
        endpoints.add("oncall", f"{receiver.url}/other")
    endpoints.add("oncall", f"{receiver.url}/hook/{token}", statuses=["COMPLETED"],
                  replace=True)
    done = tasks.trigger("t-echo", {"x": 2})
    assert wait_final(done.id).status == RunStatus.COMPLETED
    assert [d["endpoint"] for d in _delivered(done.id)] == ["oncall"]
    assert [e["name"] for e in endpoints.list_all()] == ["oncall"]

    # removed: no new delivery
    endpoints.remove("oncall", by="ops:test")
    assert endpoints.list_all() == []
    done = tasks.trigger("t-echo", {"x": 3})
    assert wait_final(done.id).status == RunStatus.COMPLETED
    time.sleep(0.5)
    assert rw.deliveries(get_runtime().store, done.id) == []
    with pytest.raises(endpoints.RunWebhookNotFoundError):
        endpoints.remove("oncall")
    assert token not in caplog.text and SECRET not in caplog.text
    assert "run webhook oncall (127.0.0.1) added by ops:test" in caplog.text


def test_bad_endpoints_are_refused_without_their_values(env: Any) -> None:
    token = uuid.uuid4().hex
    cases = [
        ({"url": f"ftp://example.com/{token}"}, "url: Value error, url must be an http"),
        ({"url": f"https://example.com/{token}", "secret": f"nope{token}"}, "secret"),
        ({"url": f"https://example.com/{token}", "statuses": ["QUEUED"]},
         "not final statuses: QUEUED"),
        ({"url": f"https://example.com/{token}", "tasks": "t-echo"}, "tasks must be a list"),
        ({"url": f"https://example.com/{token}", "max_attempts": 0}, "max_attempts"),
    ]
    for fields, said in cases:
        with pytest.raises(endpoints.RunWebhookError) as err:
            endpoints.add("ok-name", **fields)
        assert said in str(err.value) and token not in str(err.value), str(err.value)
    with pytest.raises(endpoints.RunWebhookError, match="letters, digits"):
        endpoints.add("no spaces", "https://example.com/")
    assert endpoints.list_all() == [] and _stored_bytes() == b""


def test_a_name_of_the_setting_is_the_setting_s(env: Any, receiver: Receiver) -> None:
    _configure(env, {"alerts": {"url": f"{receiver.url}/alerts"}})
    with pytest.raises(endpoints.RunWebhookExistsError, match="BUSTER_RUN_WEBHOOKS"):
        endpoints.add("alerts", f"{receiver.url}/mine")
    with pytest.raises(endpoints.RunWebhookNotFoundError, match="BUSTER_RUN_WEBHOOKS"):
        endpoints.remove("alerts")
    endpoints.add("mine", f"{receiver.url}/mine", statuses=["CANCELED"])
    assert [(e["name"], e["source"]) for e in endpoints.list_all()] == [
        ("alerts", "settings"), ("mine", "stored")]
    # both are in force: a cancel (which "alerts" does not want) goes to "mine" only
    from runtime.timer import TimerLoop

    run = tasks.trigger("t-echo", {}, delay="1h")
    runs.cancel(run.id)
    rt = get_runtime()
    assert TimerLoop(rt).tick()["notify"] == 1
    assert rw.send_due(rt.store, endpoints.current(rt)) == 1
    assert receiver.to("/mine") and not receiver.to("/alerts")


def test_a_worker_in_another_process_posts_to_an_endpoint_added_after_it_started(
        pg_env: Any, receiver: Receiver) -> None:
    pg_env.start_worker(run_webhook_poll_seconds=0.05)
    wait_for(lambda: get_runtime().store.workers_online(30), timeout=30)
    endpoints.add("late", f"{receiver.url}/late", statuses=["FAILED"])
    # its refresh (0.3 s here, 5 s by default) passes before the run ends there
    time.sleep(1.0)
    failed = tasks.trigger("t-child", {"fail": True, "i": 1})
    assert wait_final(failed.id, timeout=60).status == RunStatus.FAILED
    assert [(d["endpoint"], d["status"]) for d in _delivered(failed.id)] == [
        ("late", "delivered")]
    assert json.loads(receiver.to("/late")[0]["body"])["data"]["run"]["id"] == failed.id


def test_ops_add_list_and_remove_endpoints_from_the_cli(
        pg_env: Any, receiver: Receiver, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    token = uuid.uuid4().hex
    monkeypatch.setenv("HOOK_URL", f"{receiver.url}/cli/{token}")
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    said: list[Any] = []

    def cli(*args: str) -> Any:
        said.append(pg_env.cli(*args))
        return said[-1]

    res = cli("run-webhooks", "add", "ops", "--url", "env:HOOK_URL",
              "--secret", f"@{secret_file}", "--status", "CANCELED", "--task", "t-echo")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert (shown["host"], shown["signed"], shown["statuses"], shown["tasks"]) == (
        "127.0.0.1", True, ["CANCELED"], ["t-echo"])
    res = cli("run-webhooks", "list")
    [listed] = map(json.loads, res.stdout.splitlines())
    assert (listed["name"], listed["source"], listed["configured"]) == ("ops", "stored", True)
    res = cli("run-webhooks", "test", "ops")
    assert res.returncode == 0, res.stderr
    assert json.loads(receiver.to(f"/cli/{token}")[0]["body"])["type"] == "run.test"
    res = cli("run-webhooks", "add", "ops", "--url", "env:HOOK_URL")
    assert res.returncode != 0 and "exists" in res.stderr
    res = cli("run-webhooks", "add", "bad", "--url", f"ftp://x/{token}")
    assert res.returncode != 0 and "http:// or https://" in res.stderr
    res = cli("run-webhooks", "add", "bad", "--url", "env:NOT_SET_ANYWHERE")
    assert res.returncode != 0 and "NOT_SET_ANYWHERE is not set" in res.stderr
    assert cli("run-webhooks", "remove", "ops").returncode == 0
    res = cli("run-webhooks", "remove", "ops")
    assert res.returncode != 0 and "no stored run webhook named 'ops'" in res.stderr
    everything = "".join(r.stdout + r.stderr for r in said)
    assert len(said) == 8 and token not in everything and SECRET not in everything


def test_an_endpoint_that_no_longer_decrypts_is_skipped_and_named(
        env: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    import runtime

    endpoints.add("old-key", f"{receiver.url}/x")
    endpoints.add("kept", f"{receiver.url}/y")
    with get_runtime().store.engine.begin() as conn:  # as if stored under another key
        conn.execute(t.run_webhook_endpoints.update()
                     .where(t.run_webhook_endpoints.c.name == "old-key")
                     .values(config=b"gAAAAA-not-a-token"))
    runtime.configure(**env.settings)
    caplog.set_level(logging.ERROR, logger="buster.run_webhooks")
    assert [e["name"] for e in endpoints.list_all()] == ["kept"]
    assert "stored run webhook old-key cannot be read" in caplog.text
