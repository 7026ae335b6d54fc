"""Incoming webhooks: a real dashboard process takes signed deliveries the way GitHub,
Stripe and Standard Webhooks senders sign them, and a real worker runs the task."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dashboard.api.webhooks import WebhookRejected, verify
from dashboard.config import DashboardSettings, WebhookEndpoint
from runtime import RunStatus, get_runtime, runs
from tests.conftest import Env
from tests.dashboard.conftest import start_dashboard, start_worker
from tests.helpers import wait_final, wait_for

GITHUB_SECRET = "gh-s3cret-never-shown"
STRIPE_SECRET = "whsec_stripe_s3cret_never_shown"
STANDARD_KEY = base64.b64encode(b"standard-webhooks-key-bytes-32!!").decode()
ENDPOINTS = {
    "github": {"task": "t-echo", "scheme": "github", "secret": GITHUB_SECRET,
               "tags": ["source:github"]},
    "stripe": {"task": "t-echo", "scheme": "stripe", "secret": STRIPE_SECRET},
    "standard": {"task": "t-echo", "scheme": "standard", "secret": f"whsec_{STANDARD_KEY}",
                 "payload": "body"},
    "nowhere": {"task": "no-such-task", "scheme": "hmac-sha256", "secret": "x"},
}


def _hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def github(body: bytes, delivery: str, secret: str = GITHUB_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + _hex(secret, body),
            "X-GitHub-Delivery": delivery, "X-GitHub-Event": "push",
            "Content-Type": "application/json", "Authorization": "token leaked?"}


def stripe(body: bytes, stamp: int | None = None, secret: str = STRIPE_SECRET) -> dict[str, str]:
    t = int(time.time()) if stamp is None else stamp
    sig = _hex(secret, f"{t}.".encode() + body)
    return {"Stripe-Signature": f"t={t},v1={'0' * 64},v1={sig}",
            "Content-Type": "application/json"}


def standard(body: bytes, msg_id: str, stamp: int | None = None) -> dict[str, str]:
    t = str(int(time.time()) if stamp is None else stamp)
    mac = hmac.new(base64.b64decode(STANDARD_KEY), f"{msg_id}.{t}.".encode() + body,
                   hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": t,
            "webhook-signature": "v1,bm90LWl0 v1," + base64.b64encode(mac).decode()}


@pytest.fixture
def hooks_url(pg_env: Env) -> Iterator[str]:
    start_worker(pg_env)
    rt = get_runtime()
    wait_for(lambda: any(r["id"] == "t-echo" for r in rt.store.task_definitions()), timeout=30)
    url, _ = start_dashboard(pg_env, dashboard_webhooks=json.dumps(ENDPOINTS),
                             dashboard_trusted_header="X-Forwarded-Email")
    yield url + "/api/v1/webhooks"


def _echoed(run_id: str) -> Any:
    run = wait_final(run_id)
    assert run.status == RunStatus.COMPLETED
    return run.output["echo"]


def test_a_signed_github_delivery_runs_the_task_once(hooks_url: str, pg_env: Env):
    body = json.dumps({"ref": "refs/heads/main", "commits": [{"id": "abc"}]}).encode()
    first = httpx.post(f"{hooks_url}/github", content=body, headers=github(body, "d-1"))
    assert first.status_code == 200 and first.json()["isCached"] is False
    payload = _echoed(first.json()["id"])
    assert payload["webhook"] == "github" and payload["event"] == "push"
    assert payload["id"] == "d-1" and payload["body"]["commits"] == [{"id": "abc"}]
    # credentials and signatures are not handed on
    assert "authorization" not in payload["headers"]
    assert "x-hub-signature-256" not in payload["headers"]
    assert payload["headers"]["x-github-event"] == "push"
    assert set(runs.retrieve(first.json()["id"]).tags) == {"webhook:github", "source:github"}
    # GitHub redelivers until it sees a 2xx: the same delivery is the same run
    again = httpx.post(f"{hooks_url}/github", content=body, headers=github(body, "d-1"))
    assert again.json() == {"id": first.json()["id"], "isCached": True}
    other = httpx.post(f"{hooks_url}/github", content=body, headers=github(body, "d-2"))
    assert other.json()["id"] != first.json()["id"]


def test_bad_signatures_are_refused_and_store_nothing(hooks_url: str, pg_env: Env):
    body = b'{"ref": "refs/heads/main"}'
    before = len(runs.list(task="t-echo"))
    cases = [
        github(body, "d-3", secret="wrong"),
        {**github(body, "d-4"), "X-Hub-Signature-256": ""},
        {"X-GitHub-Delivery": "d-5"},
    ]
    for headers in cases:
        res = httpx.post(f"{hooks_url}/github", content=body, headers=headers)
        assert res.status_code == 401, res.text
        assert "signature verification failed" in res.json()["error"]
        assert GITHUB_SECRET not in res.text
    tampered = httpx.post(f"{hooks_url}/github", content=body + b" ",
                          headers=github(body, "d-6"))
    assert tampered.status_code == 401
    stale = b'{"id": "evt_1", "type": "charge.succeeded"}'
    old = httpx.post(f"{hooks_url}/stripe", content=stale,
                     headers=stripe(stale, stamp=int(time.time()) - 3600))
    assert old.status_code == 401 and "300 s" in old.json()["error"]
    assert len(runs.list(task="t-echo")) == before
    unknown = httpx.post(f"{hooks_url}/gitlab", content=body, headers=github(body, "d-7"))
    assert unknown.status_code == 404
    no_task = httpx.post(f"{hooks_url}/nowhere", content=body,
                         headers={"x-signature-256": _hex("x", body)})
    assert no_task.status_code == 404 and "no-such-task" in no_task.json()["error"]
    # the secrets appear in no log line of the dashboard either
    logs = "".join(p.read_text() for p in pg_env.tmp.glob("dashboard-*.log"))
    assert "rejected webhook github" in logs
    assert GITHUB_SECRET not in logs and STRIPE_SECRET not in logs


def test_the_tasks_page_lists_the_endpoints_without_their_secrets(hooks_url: str):
    page = httpx.get(hooks_url.removesuffix("/api/v1/webhooks") + "/tasks",
                     headers={"X-Forwarded-Email": "ops@example.com"})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "POST /api/v1/webhooks/stripe" in text and "POST /api/v1/webhooks/github" in text
    assert "standard" in text and "body" in text
    assert all(secret not in text for secret in (GITHUB_SECRET, STRIPE_SECRET, STANDARD_KEY))


def test_stripe_and_standard_webhooks_deliveries(hooks_url: str, pg_env: Env):
    event = json.dumps({"id": "evt_42", "type": "invoice.paid", "data": {"amount": 9}}).encode()
    res = httpx.post(f"{hooks_url}/stripe", content=event, headers=stripe(event))
    assert res.status_code == 200, res.text
    payload = _echoed(res.json()["id"])
    assert (payload["id"], payload["event"], payload["body"]["data"]) == (
        "evt_42", "invoice.paid", {"amount": 9})
    assert "stripe-signature" not in payload["headers"]
    # Stripe's retry of the same event (signed again, later) is the same run
    again = httpx.post(f"{hooks_url}/stripe", content=event, headers=stripe(event))
    assert again.json() == {"id": res.json()["id"], "isCached": True}

    # an endpoint with "payload": "body" hands the task the event itself
    msg = b'{"type": "user.created", "data": {"id": 7}}'
    res = httpx.post(f"{hooks_url}/standard", content=msg, headers=standard(msg, "msg_1"))
    assert res.status_code == 200, res.text
    assert _echoed(res.json()["id"]) == {"type": "user.created", "data": {"id": 7}}
    again = httpx.post(f"{hooks_url}/standard", content=msg, headers=standard(msg, "msg_1"))
    assert again.json() == {"id": res.json()["id"], "isCached": True}
    forged = httpx.post(f"{hooks_url}/standard", content=msg,
                        headers={**standard(msg, "msg_2"), "webhook-id": "msg_3"})
    assert forged.status_code == 401


def test_signature_rules_without_a_server():
    body = b'{"id": "evt_1"}'
    stripe_ep = WebhookEndpoint(task="t", scheme="stripe", secret=STRIPE_SECRET)
    now = time.time()
    t = int(now)
    assert verify(stripe_ep, httpx.Headers(stripe(body, t)), body, now).id == "evt_1"
    # within the tolerance either way; outside it, refused
    verify(stripe_ep, httpx.Headers(stripe(body, t - 299)), body, now)
    verify(stripe_ep, httpx.Headers(stripe(body, t + 299)), body, now)
    for headers, why in [
        (stripe(body, t - 301), "more than 300 s"),
        ({"Stripe-Signature": f"t={t}"}, "no v1 signature"),
        ({"Stripe-Signature": f"t=soon,v1={'0' * 64}"}, "no timestamp"),
        (stripe(body, t, secret="whsec_other"), "does not match"),
    ]:
        with pytest.raises(WebhookRejected, match=why):
            verify(stripe_ep, httpx.Headers(headers), body, now)
    generic = WebhookEndpoint(task="t", scheme="hmac-sha256", secret="k", header="X-Sig")
    delivery = verify(generic, httpx.Headers({"x-sig": "sha256=" + _hex("k", body),
                                              "Idempotency-Key": "k-1"}), body, now)
    assert delivery.id == "k-1" and delivery.event is None
    with pytest.raises(ValueError, match="whsec_ key"):
        WebhookEndpoint(task="t", scheme="standard", secret="not base64!")
    with pytest.raises(ValueError, match="scheme"):
        WebhookEndpoint(task="t", scheme="gitlab", secret="x")  # type: ignore[arg-type]
    settings = DashboardSettings(webhooks={"gh": {"task": "t", "scheme": "github",
                                                  "secret": GITHUB_SECRET}})
    assert GITHUB_SECRET not in repr(settings) and GITHUB_SECRET not in str(settings.webhooks)
