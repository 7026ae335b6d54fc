"""Run webhooks (runtime/run_webhooks.py): a POST when a run ends, to a real HTTP receiver in
this process, on both tiers — recorded once whichever way the run ended, signed, retried
until a 2xx, given up after ``max_attempts``, never logging the URL or the secret."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from runtime import RunStatus, runs, tasks
from runtime import run_webhooks as rw
from tests.helpers import wait_final, wait_for

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
SLACK_TOKEN = "T000/B000/s3cr3tSlackToken"


class Receiver:
    """Records every POST; answers each path's queued statuses first, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, list[int]] = {}
        #: paths answered only once all of them have arrived (504 after 5 s without)
        self.together: set[str] = set()
        self._arrived: set[str] = set()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body})
                queued = receiver.answers.get(self.path) or [200]
                code = queued.pop(0) if len(queued) > 1 else queued[0]
                if self.path in receiver.together:
                    with receiver._cond:
                        receiver._arrived.add(self.path)
                        receiver._cond.notify_all()
                        if not receiver._cond.wait_for(
                                lambda: receiver.together <= receiver._arrived, timeout=5):
                            code = 504
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _configure(env: Any, endpoints: dict[str, Any]) -> Any:
    import runtime

    return runtime.configure(**env.settings, run_webhooks=endpoints,
                             run_webhook_poll_seconds=0.05,
                             dashboard_public_url="https://jobs.example.com")


@pytest.fixture
def hooked_worker(env: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import tests.tasks  # noqa: F401 - registers the test tasks
    from runtime.worker import WorkerProcess

    monkeypatch.setattr(rw, "backoff_seconds", lambda attempts: 0.1 * attempts)
    rt = _configure(env, {
        "alerts": {"url": f"{receiver.url}/alerts", "secret": SECRET},
        "slack": {"url": f"{receiver.url}/services/{SLACK_TOKEN}", "format": "slack",
                  "statuses": ["COMPLETED", "CANCELED"], "tasks": ["t-echo"]},
        "tagged": {"url": f"{receiver.url}/tagged", "statuses": ["COMPLETED"],
                   "tags": ["hook:me"], "max_attempts": 2},
    })
    wp = WorkerProcess(rt, [env.queue, env.large_queue], threads=4)
    wp.start()
    yield wp
    wp.stop(timeout=2)


def _delivered(run_id: str, n: int = 1) -> list[Any]:
    from runtime import get_runtime

    def done() -> Any:
        rows = rw.deliveries(get_runtime().store, run_id)
        return len(rows) == n and all(r["status"] != "pending" for r in rows) and rows
    return list(wait_for(done, timeout=20))


def test_each_ending_is_posted_once_to_the_endpoints_that_want_it(
    env: Any, hooked_worker: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    from dashboard.api.webhooks import _standard

    caplog.set_level(logging.WARNING, logger="buster.run_webhooks")
    receiver.answers["/alerts"] = [503, 200]  # the first try fails: retried
    failed = tasks.trigger("t-child", {"fail": True, "i": 7}, tags=["org:1"])
    assert wait_final(failed.id).status == RunStatus.FAILED
    [alert] = _delivered(failed.id)
    assert (alert["endpoint"], alert["status"], alert["attempts"]) == ("alerts", "delivered", 2)
    posts = receiver.to("/alerts")
    assert len(posts) == 2 and posts[0]["body"] == posts[1]["body"]  # the same bytes
    headers = {k.lower(): v for k, v in posts[1]["headers"].items()}
    assert headers["webhook-id"] == f"{failed.id}.alerts"
    # the signature checks out with the verifier of our incoming webhooks
    assert _standard(SECRET, posts[1]["body"], headers, time.time(), 300) == f"{failed.id}.alerts"
    doc = json.loads(posts[1]["body"])
    assert (doc["type"], doc["endpoint"]) == ("run.finished", "alerts")
    run = doc["data"]["run"]
    assert (run["id"], run["taskIdentifier"], run["status"], run["isSuccess"]) == (
        failed.id, "t-child", "FAILED", False)
    assert run["attemptCount"] == 1 and run["tags"] == ["org:1"]
    assert "child 7 failed on purpose" in run["error"]["message"]
    assert run["url"] == f"https://jobs.example.com/runs/{failed.id}"
    assert "payload" not in run and "output" not in run
    # the retry was logged by endpoint and host: never the URL's path or the secret
    assert "run webhook alerts (127.0.0.1)" in caplog.text and "HTTP 503" in caplog.text

    # a completed t-echo goes to Slack as text, and to "tagged" only when it has the tag
    done = tasks.trigger("t-echo", {"x": 1}, tags=["hook:me"])
    assert wait_final(done.id).status == RunStatus.COMPLETED
    assert {d["endpoint"] for d in _delivered(done.id, 2)} == {"slack", "tagged"}
    [slack] = [json.loads(p["body"]) for p in receiver.to(f"/services/{SLACK_TOKEN}")]
    assert set(slack) == {"text"}
    assert f"Run `{done.id}` of task `t-echo` ended *COMPLETED* after 1 attempt" in slack["text"]
    assert f"<https://jobs.example.com/runs/{done.id}|open>" in slack["text"]
    untagged = tasks.trigger("t-echo", {"x": 2})
    assert wait_final(untagged.id).status == RunStatus.COMPLETED
    assert [d["endpoint"] for d in _delivered(untagged.id)] == ["slack"]

    # ended outside a worker: canceled while delayed, expired unstarted
    canceled = tasks.trigger("t-echo", {}, delay="1h")
    runs.cancel(canceled.id)
    assert [(d["endpoint"], d["run_status"]) for d in _delivered(canceled.id)] == [
        ("slack", "CANCELED")]
    expired = tasks.trigger("t-nobody-runs", {}, ttl="1s")  # PENDING_VERSION, then EXPIRED
    assert wait_final(expired.id, timeout=10).status == RunStatus.EXPIRED
    assert [(d["endpoint"], d["run_status"]) for d in _delivered(expired.id)] == [
        ("alerts", "EXPIRED")]
    # a run no endpoint wants has no delivery (a completed run of another task)
    other = tasks.trigger("t-child", {"i": 1})
    assert wait_final(other.id).status == RunStatus.COMPLETED
    time.sleep(0.5)
    from runtime import get_runtime

    assert rw.deliveries(get_runtime().store, other.id) == []
    assert SLACK_TOKEN not in caplog.text and SECRET not in caplog.text


def test_a_delivery_is_given_up_after_max_attempts(
    env: Any, hooked_worker: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="buster.run_webhooks")
    receiver.answers["/tagged"] = [500]  # always
    run = tasks.trigger("t-echo", {}, tags=["hook:me"])
    assert wait_final(run.id).status == RunStatus.COMPLETED
    tagged = [d for d in _delivered(run.id, 2) if d["endpoint"] == "tagged"]
    assert [(d["status"], d["attempts"]) for d in tagged] == [("failed", 2)]
    assert tagged[0]["last_error"].startswith("HTTP 500")
    assert len(receiver.to("/tagged")) == 2
    assert "(attempt 2 of 2, giving up)" in caplog.text


def test_an_unreachable_endpoint_is_retried_and_its_error_names_no_url(
    env: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker needed: the timer's recording and the sender's posting, called directly."""
    from runtime.timer import TimerLoop

    monkeypatch.setattr(rw, "backoff_seconds", lambda attempts: 0.0)
    port = receiver.server.server_address[1]
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens there now
    token = uuid.uuid4().hex
    rt = _configure(env, {"down": {"url": f"http://127.0.0.1:{port}/{token}",
                                   "statuses": ["CANCELED"], "max_attempts": 3,
                                   "timeout_seconds": 2}})
    run = tasks.trigger("t-echo", {}, delay="1h")
    runs.cancel(run.id)
    assert TimerLoop(rt).tick()["notify"] == 1
    assert TimerLoop(rt).tick()["notify"] == 0  # recorded once: the flag is cleared
    from sqlalchemy import select

    from runtime.store import tables as t

    with rt.store.engine.connect() as conn:
        assert conn.execute(select(t.runs.c.notify_pending)
                            .where(t.runs.c.id == run.id)).scalar() is False
    endpoints = rt.settings.run_webhooks
    assert [rw.send_due(rt.store, endpoints) for _ in range(3)] == [0, 0, 0]
    [row] = rw.deliveries(rt.store, run.id)
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert "Connection" in row["last_error"] and token not in row["last_error"]


def test_bad_endpoints_are_refused_with_a_clear_error() -> None:
    from pydantic import ValidationError

    from runtime.settings import Settings

    cases = [
        ({"x": {"url": "ftp://example.com"}}, "http:// or https://"),
        ({"x": {"url": "https://e.com", "secret": "hunter2"}}, "whsec_"),
        ({"x": {"url": "https://e.com", "statuses": ["QUEUED"]}}, "not final statuses: QUEUED"),
        ({"x": {"url": "https://e.com", "statuses": []}}, "at least one final status"),
        ({"x": {"url": "https://e.com", "method": "PUT"}}, "Extra inputs are not permitted"),
        ({"a b": {"url": "https://e.com"}}, "run webhook name 'a b'"),
    ]
    for value, message in cases:
        with pytest.raises(ValidationError, match=message.replace("(", r"\(")) as err:
            Settings(run_webhooks=value)
        assert "hunter2" not in str(err.value)


def test_a_worker_killed_mid_run_gets_its_crash_posted_by_another_process(
    pg_env: Any, receiver: Receiver, tmp_path: Any
) -> None:
    """Configured from the environment, as a deployment does; the run ends CRASHED by the
    timer loop of the worker that outlived the killed one."""
    import signal

    from tests import tasks as t

    hooks = json.dumps({"alerts": {"url": f"{receiver.url}/alerts", "secret": SECRET}})
    trace = tmp_path / "trace"
    victim = pg_env.start_worker(threads=2, run_webhooks=hooks)
    handle = tasks.trigger("t-slow", {"seconds": 30, "trace": str(trace)}, max_attempts=1)
    wait_for(lambda: "start:1" in t.read_trace(trace), timeout=30)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    pg_env.start_worker(threads=2, run_webhooks=hooks, run_webhook_poll_seconds=0.05)
    assert wait_final(handle.id, timeout=60).status == RunStatus.CRASHED
    wait_for(lambda: receiver.to("/alerts"), timeout=30)
    [post] = receiver.to("/alerts")
    run = json.loads(post["body"])["data"]["run"]
    assert (run["id"], run["status"], run["error"]["type"]) == (handle.id, "CRASHED", "CRASHED")
    assert "stopped heartbeating" in run["error"]["message"]


def test_ops_list_test_and_retry_endpoints_from_the_cli(
    pg_env: Any, receiver: Receiver
) -> None:
    from dashboard.api.webhooks import _standard
    from runtime.timer import TimerLoop

    token = uuid.uuid4().hex
    endpoints = {
        "alerts": {"url": f"{receiver.url}/alerts/{token}", "secret": SECRET},
        "down": {"url": f"http://127.0.0.1:9/{token}", "statuses": ["CANCELED"],
                 "max_attempts": 1, "timeout_seconds": 2},
    }
    hooks = json.dumps(endpoints)

    res = pg_env.cli("run-webhooks", "test", "alerts", run_webhooks=hooks)
    assert res.returncode == 0, res.stderr
    [post] = receiver.to(f"/alerts/{token}")
    headers = {k.lower(): v for k, v in post["headers"].items()}
    assert _standard(SECRET, post["body"], headers, time.time(), 300).startswith("run_test.")
    assert json.loads(post["body"])["type"] == "run.test"
    res = pg_env.cli("run-webhooks", "test", "down", run_webhooks=hooks)
    assert res.returncode != 0
    assert "run webhook down (127.0.0.1): " in res.stderr and token not in res.stderr
    res = pg_env.cli("run-webhooks", "test", "nope", run_webhooks=hooks)
    assert res.returncode != 0 and "configured: alerts, down" in res.stderr

    # a delivery that failed for good, then requeued by ops
    rt = _configure(pg_env, endpoints)
    run = tasks.trigger("t-echo", {}, delay="1h")
    runs.cancel(run.id)
    TimerLoop(rt).tick()
    rw.send_due(rt.store, rt.settings.run_webhooks)
    assert [r["status"] for r in rw.deliveries(rt.store, run.id)] == ["failed"]
    res = pg_env.cli("run-webhooks", "list", run_webhooks=hooks)
    assert res.returncode == 0, res.stderr
    listed = {d["name"]: d for d in map(json.loads, res.stdout.splitlines())}
    assert listed["down"]["host"] == "127.0.0.1" and listed["down"]["signed"] is False
    assert listed["down"]["deliveries"] == {"failed": 1}
    assert listed["alerts"]["statuses"] == ["CRASHED", "EXPIRED", "FAILED", "SYSTEM_FAILURE",
                                            "TIMED_OUT"]
    assert token not in res.stdout
    res = pg_env.cli("run-webhooks", "retry", "down", run_webhooks=hooks)
    assert res.returncode == 0 and json.loads(res.stdout) == {"requeued": 1}
    [row] = rw.deliveries(rt.store, run.id)
    assert (row["status"], row["attempts"]) == ("pending", 0)


def test_deliveries_to_different_endpoints_are_posted_at_once(
    env: Any, receiver: Receiver
) -> None:
    """Each endpoint answers only once the other's request has arrived too: posted one
    after the other, the first would time out (504) waiting for the second."""
    from runtime.timer import TimerLoop

    receiver.together = {"/a", "/b"}
    rt = _configure(env, {name: {"url": f"{receiver.url}/{name}", "statuses": ["CANCELED"]}
                          for name in ("a", "b")})
    run = tasks.trigger("t-echo", {}, delay="1h")
    runs.cancel(run.id)
    assert TimerLoop(rt).tick()["notify"] == 2
    assert rw.send_due(rt.store, rt.settings.run_webhooks) == 2
    assert {(r["endpoint"], r["status"]) for r in rw.deliveries(rt.store, run.id)} == {
        ("a", "delivered"), ("b", "delivered")}


def test_a_bad_setting_is_a_clear_cli_error_without_its_value(pg_env: Any) -> None:
    token = uuid.uuid4().hex
    res = pg_env.cli("run-webhooks", "list",
                     run_webhooks='{"a": {"url": "https://hooks.example.com/' + token + '"')
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert 'invalid setting: error parsing value for field "run_webhooks"' in res.stderr
    assert "not valid JSON?" in res.stderr and token not in res.stderr
    res = pg_env.cli("run-webhooks", "list",
                     run_webhooks=json.dumps({"a": {"url": f"ftp://x/{token}"}}))
    assert res.returncode == 2 and "run_webhooks.a.url" in res.stderr
    assert "http:// or https://" in res.stderr and token not in res.stderr
    res = pg_env.cli("runs", "list", lease_seconds="soon")
    assert res.returncode == 2 and "lease_seconds" in res.stderr and "soon" not in res.stderr
