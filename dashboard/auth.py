"""API keys (bearer, stored hashed), browser sessions (signed cookie) and CSRF tokens.

Keys are long random strings, so a SHA-256 hash is enough to make a leaked table useless
(no slow KDF: every API request checks one). The key shape is deliberately not Trigger.dev's
``tr_<env>_sk_<24>`` "additional key" shape, which the SDK refuses to self-sign tokens with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets as pysecrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from runtime import ids
from runtime.durations import utcnow
from runtime.store import dashboard as sql

log = logging.getLogger("buster.dashboard.auth")
KEY_PREFIX = "bjk_"
SESSION_COOKIE = "bj_session"
CSRF_COOKIE = "bj_csrf"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(store: Any, name: str) -> tuple[str, str]:
    """Create a key; returns (id, plain key). The plain key exists only in this return."""
    plain = KEY_PREFIX + pysecrets.token_urlsafe(32)
    key_id = ids.new_id("key")
    sql.create_api_key(
        store,
        {
            "id": key_id,
            "name": name,
            "key_hash": hash_key(plain),
            "prefix": plain[:10],
            "created_at": utcnow(),
        },
    )
    return key_id, plain


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key (``key_id``) or a user named by the auth proxy."""

    name: str
    key_id: str | None = None


class KeyCache:
    """Bearer lookups cached briefly: one indexed SELECT per key per ``ttl`` seconds, so
    the trigger hot path costs no extra round trip. Revocation applies within ``ttl``."""

    def __init__(self, store: Any, ttl: float):
        self.store, self.ttl = store, ttl
        self._hits: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(found, principal) from memory only: lets a request skip a thread hop."""
        with self._lock:
            hit = self._hits.get(hash_key(key))
        if hit is not None and time.monotonic() - hit[0] < self.ttl:
            return True, hit[1]
        return False, None

    def lookup(self, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        with self._lock:
            hit = self._hits.get(digest)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        row = sql.find_api_key(self.store, digest)
        principal = Principal(row["name"], row["id"]) if row is not None else None
        if principal is not None:
            sql.touch_api_key(self.store, row["id"])  # type: ignore[index]
        with self._lock:
            if len(self._hits) > 10_000:  # a flood of wrong keys must not grow memory
                self._hits.clear()
            self._hits[digest] = (now, principal)
        return principal


def bearer(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_fingerprint(key: str | None) -> str:
    """What a log line may say about a presented key: never the key itself."""
    return "none" if not key else f"sha256:{hash_key(key)[:8]}"


# ---------------------------------------------------------------------- signed values
class Signer:
    def __init__(self, secret: bytes):
        self.secret = secret

    def sign(self, data: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
        return body + "." + self._mac(body)

    def unsign(self, token: str | None) -> dict[str, Any] | None:
        if not token or "." not in token:
            return None
        body, mac = token.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("exp", 0) < time.time():
            return None
        return data

    def mac(self, text: str) -> str:
        return self._mac(text)

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()[:40]


def derive_secret(encryption_key: str, purpose: str) -> bytes:
    """Per-purpose secrets derived from the store's encryption key, so every dashboard
    replica agrees without another setting to distribute."""
    return hmac.new(encryption_key.encode(), purpose.encode(), hashlib.sha256).digest()


def new_csrf_token() -> str:
    return pysecrets.token_urlsafe(24)
