"""Incoming webhooks: ``POST /api/v1/webhooks/{name}`` triggers a task from a Stripe,
GitHub or Standard Webhooks sender, without glue code (Trigger.dev issues #3295, #3353).

The senders cannot send our API key, so a webhook authenticates by its signature instead,
checked with the endpoint's secret before anything is stored. Endpoints come from
``BUSTER_DASHBOARD_WEBHOOKS`` (see ``WebhookEndpoint``). A redelivery (senders retry until
they see a 2xx) carries the same delivery id, which becomes the run's idempotency key: the
same run is answered, and the task runs once.

The task gets ``{"webhook", "id", "event", "body", "headers", "received_at"}``: the parsed
JSON body (the text when it is not JSON), the sender's delivery id and event type, and the
request's headers without credentials or signatures; or, with ``"payload": "body"``, the
parsed body alone (for a ``schema_task`` whose schema is the sender's event).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runtime.durations import utcnow
from runtime.trigger import build_row

from ..config import WebhookEndpoint
from ..state import Dash, dash
from .common import answered
from .errors import ApiError
from .serialize import iso

log = logging.getLogger("buster.dashboard.webhooks")

#: never handed to the task: credentials, and every scheme's signature header
_DROPPED_HEADERS = {"authorization", "cookie", "x-hub-signature", "x-hub-signature-256",
                    "stripe-signature", "webhook-signature", "svix-signature"}


class WebhookRejected(Exception):
    """The request is not from the sender: 401, with a reason that holds no secret."""


@dataclass(frozen=True)
class Delivery:
    id: str | None  # the sender's delivery id (dedupes redeliveries); None: none sent
    event: str | None


def verify(endpoint: WebhookEndpoint, headers: Any, body: bytes, now: float) -> Delivery:
    """Check the signature of ``body``; return the delivery's id and event type."""
    secret = endpoint.secret.get_secret_value()
    if endpoint.scheme == "github":
        _hex_signature(secret, body, headers.get("x-hub-signature-256"), "X-Hub-Signature-256")
        return Delivery(headers.get("x-github-delivery"), headers.get("x-github-event"))
    if endpoint.scheme == "stripe":
        _stripe(secret, body, headers.get("stripe-signature"), now, endpoint.tolerance_seconds)
        doc = _json_object(body)
        return Delivery(_text(doc.get("id")), _text(doc.get("type")))
    if endpoint.scheme == "standard":
        msg_id = _standard(secret, body, headers, now, endpoint.tolerance_seconds)
        return Delivery(msg_id, _text(_json_object(body).get("type")))
    _hex_signature(secret, body, headers.get(endpoint.header), endpoint.header)
    return Delivery(headers.get("idempotency-key") or headers.get("x-delivery-id"), None)


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _hex_signature(secret: str, body: bytes, value: str | None, header: str) -> None:
    if not value:
        raise WebhookRejected(f"missing {header} header")
    given = value.strip().removeprefix("sha256=")
    expected = _mac(secret.encode(), body).hex()
    if not hmac.compare_digest(given.lower(), expected):
        raise WebhookRejected(f"{header} does not match the body")


def _stripe(secret: str, body: bytes, value: str | None, now: float, tolerance: int) -> None:
    if not value:
        raise WebhookRejected("missing Stripe-Signature header")
    stamp, signatures = None, []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            stamp = item
        elif key == "v1":
            signatures.append(item)
    if stamp is None or not stamp.isdigit() or not signatures:
        raise WebhookRejected("Stripe-Signature has no timestamp or no v1 signature")
    if abs(now - int(stamp)) > tolerance:
        raise WebhookRejected(f"Stripe-Signature timestamp is more than {tolerance} s away")
    expected = _mac(secret.encode(), stamp.encode() + b"." + body).hex()
    if not any(hmac.compare_digest(sig, expected) for sig in signatures):
        raise WebhookRejected("Stripe-Signature does not match the body")


def _standard(secret: str, body: bytes, headers: Any, now: float, tolerance: int) -> str:
    # Standard Webhooks (https://www.standardwebhooks.com); Svix sends the same as svix-*
    msg_id = headers.get("webhook-id") or headers.get("svix-id")
    stamp = headers.get("webhook-timestamp") or headers.get("svix-timestamp")
    value = headers.get("webhook-signature") or headers.get("svix-signature")
    if not msg_id or not stamp or not value:
        raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        raise WebhookRejected(f"webhook-timestamp is more than {tolerance} s away")
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        raise WebhookRejected("the endpoint's secret is not a whsec_ base64 key") from None
    expected = base64.b64encode(_mac(key, f"{msg_id}.{stamp}.".encode() + body)).decode()
    given = [sig.partition(",")[2] for sig in value.split() if sig.startswith("v1,")]
    if not any(hmac.compare_digest(sig, expected) for sig in given):
        raise WebhookRejected("webhook-signature does not match the body")
    return str(msg_id)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _payload(
    name: str, endpoint: WebhookEndpoint, delivery: Delivery, body: bytes, headers: Any
) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the webhook body is not UTF-8 text") from None
    try:
        parsed: Any = json.loads(text) if text.strip() else None
    except ValueError:
        parsed = text
    if endpoint.payload == "body":
        return parsed
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _DROPPED_HEADERS}
    return {"webhook": name, "id": delivery.id, "event": delivery.event, "body": parsed,
            "headers": kept, "received_at": iso(utcnow())}


def _row(d: Dash, name: str, endpoint: WebhookEndpoint, delivery: Delivery, body: bytes,
         headers: Any) -> dict[str, Any]:
    from .triggering import require_task

    require_task(d, endpoint.task)
    options: dict[str, Any] = {"tags": [f"webhook:{name}"[:128], *endpoint.tags]}
    if delivery.id:
        # a redelivery names the same run: the sender's retries run the task once
        options["idempotency_key"] = f"webhook:{name}:{delivery.id}"
    payload = _payload(name, endpoint, delivery, body, headers)
    return build_row(d.rt, endpoint.task, payload, options, None)


async def receive_webhook(request: Request) -> Response:
    """Verify a sender's signature and trigger the endpoint's task."""
    d = dash(request)
    name = unquote(request.path_params["name"])
    endpoint = d.settings.webhooks.get(name)
    if endpoint is None:
        return ApiError(404, f"Webhook not found: {name}").response()
    body = await request.body()
    try:
        delivery = verify(endpoint, request.headers, body, time.time())
    except WebhookRejected as exc:
        log.warning("rejected webhook %s: %s", name, exc,
                    extra={"action": "webhook_rejected", "webhook": name})
        return ApiError(401, f"Webhook signature verification failed: {exc}").response()

    async def trigger() -> Any:
        row = await run_in_threadpool(_row, d, name, endpoint, delivery, body, request.headers)
        return await d.triggers.submit(row)

    handle = await answered(trigger())
    if isinstance(handle, Response):
        return handle
    log.info("webhook %s delivery %s -> run %s", name, delivery.id, handle.id,
             extra={"action": "webhook", "webhook": name, "run_id": handle.id})
    return JSONResponse({"id": handle.id, "isCached": bool(handle.is_cached)})
