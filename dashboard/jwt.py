"""Mint the ``x-trigger-jwt`` the SDK turns into ``publicAccessToken``.

The SDK never checks it, but without it the SDK self-signs one with the caller's key and
throws for key shapes it cannot sign with. We sign HS256 with the caller's own key, as
Trigger.dev signs with the environment's secret key, so a client can verify it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: str, scopes: list[str], *, ttl_seconds: int = 3600, sub: str = "env") -> str:
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iss": "https://id.trigger.dev",
        "aud": "https://api.trigger.dev",
        "sub": sub,
        "pub": True,
        "scopes": scopes,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    signing = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + _b64(sig)
