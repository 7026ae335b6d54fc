"""Dashboard settings (``BUSTER_DASHBOARD_*``), next to the runtime's ``BUSTER_*`` settings."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Scheme = Literal["github", "stripe", "standard", "hmac-sha256"]


class WebhookEndpoint(BaseModel):
    """One endpoint of ``BUSTER_DASHBOARD_WEBHOOKS`` (a JSON object of name -> endpoint)."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1)
    #: how the sender signs: ``github`` (X-Hub-Signature-256), ``stripe`` (Stripe-Signature),
    #: ``standard`` (Standard Webhooks / Svix: webhook-id, webhook-timestamp,
    #: webhook-signature) or ``hmac-sha256`` (a hex HMAC of the body in ``header``)
    scheme: Scheme
    secret: SecretStr = Field(min_length=1)
    #: ``hmac-sha256``: the header holding the signature
    header: str = "x-signature-256"
    #: ``stripe``/``standard``: a signature older or newer than this is refused (replays)
    tolerance_seconds: int = Field(default=300, ge=1)
    #: tags every run of this endpoint carries
    tags: list[str] = Field(default_factory=list)
    #: the task's payload: the ``envelope`` (body, event, delivery id, headers) or the
    #: parsed ``body`` alone
    payload: Literal["envelope", "body"] = "envelope"

    @model_validator(mode="after")
    def _standard_secret_is_a_key(self) -> WebhookEndpoint:
        if self.scheme == "standard":
            try:
                base64.b64decode(self.secret.get_secret_value().removeprefix("whsec_"),
                                 validate=True)
            except ValueError:
                raise ValueError("a standard webhook's secret is its whsec_ key: "
                                 "'whsec_' and base64") from None
        return self


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUSTER_DASHBOARD_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8030
    #: Largest request body accepted (bytes). Above it: 413 with the limit in the message.
    #: Trigger.dev's SDK offloads payloads ≥ 128 KiB to packet storage, which we do not
    #: offer, so a body this large is rejected instead of half-stored.
    max_body_bytes: int = 4 * 1024 * 1024
    #: Header an authenticating proxy sets to the signed-in user (e.g. ``X-Forwarded-Email``).
    #: Empty: pages need an API-key login. Only set it when the proxy strips the header from
    #: client requests — anyone who can send it is signed in.
    trusted_header: str = ""
    #: Public origin used in waitpoint-token callback URLs; empty: taken from the request.
    public_url: str = ""
    #: Browser session lifetime (seconds).
    session_seconds: int = 12 * 3600
    #: Seconds an API key lookup is cached in process (revocation takes this long to apply).
    key_cache_seconds: float = 5.0
    #: Runs-list page size and the most runs a bulk action touches.
    page_size: int = 50
    bulk_limit: int = 10_000
    #: SSE poll interval (seconds) for live run pages and the realtime endpoint.
    live_interval_seconds: float = 0.5
    #: RabbitMQ management API (``http://guest:guest@host:15672``) for unacked counts; empty:
    #: ready counts only, from a passive queue declare.
    rabbitmq_api_url: str = ""
    #: How long a worker's last heartbeat counts as online (seconds).
    worker_online_seconds: float = 30.0
    #: Incoming webhooks (``POST /api/v1/webhooks/{name}``): a JSON object of name ->
    #: ``{"task", "scheme", "secret", ...}`` (``WebhookEndpoint``). Empty: none served.
    webhooks: dict[str, WebhookEndpoint] = Field(default_factory=dict)
    #: Keep request-idempotency records this long (the SDK retries for ~10 s).
    request_key_ttl_seconds: float = 24 * 3600.0
