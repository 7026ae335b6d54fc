"""What every request handler needs, built once per app: the runtime, settings, key cache,
signers. Stored on ``app.state.dash``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from .api.trigger_batcher import TriggerBatcher
from .auth import KeyCache, Signer, derive_secret
from .config import DashboardSettings


@dataclass
class Dash:
    rt: Any
    settings: DashboardSettings
    keys: KeyCache
    sessions: Signer
    callbacks: Signer
    #: the trigger endpoint's group commit (one per process: requests share its writes)
    triggers: TriggerBatcher

    @classmethod
    def build(cls, rt: Any, settings: DashboardSettings) -> Dash:
        return cls(
            rt=rt,
            settings=settings,
            keys=KeyCache(rt.store, settings.key_cache_seconds),
            sessions=Signer(derive_secret(rt.encryption_key, "dashboard-session")),
            callbacks=Signer(derive_secret(rt.encryption_key, "waitpoint-callback")),
            triggers=TriggerBatcher(rt),
        )

    @property
    def store(self) -> Any:
        return self.rt.store


def dash(request: Request) -> Dash:
    d: Dash = request.app.state.dash
    return d
