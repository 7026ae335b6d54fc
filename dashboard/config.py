"""Dashboard settings (``BUSTER_DASHBOARD_*``), next to the runtime's ``BUSTER_*`` settings."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


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
    #: Keep request-idempotency records this long (the SDK retries for ~10 s).
    request_key_ttl_seconds: float = 24 * 3600.0
