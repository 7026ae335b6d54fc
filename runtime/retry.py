"""Retry options and Trigger.dev's backoff formula."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RetryOptions:
    """``max_attempts`` counts the first attempt. Fields left ``None`` take the settings'
    defaults (Trigger.dev: 3 attempts, factor 2, 1 s, 60 s, randomize)."""

    max_attempts: int | None = None
    factor: float | None = None
    min_timeout_ms: int | None = None
    max_timeout_ms: int | None = None
    randomize: bool | None = None

    def resolved(self, settings: Any) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts or settings.default_max_attempts,
            "factor": self.factor if self.factor is not None else settings.default_retry_factor,
            "min_timeout_ms": self.min_timeout_ms
            if self.min_timeout_ms is not None
            else settings.default_retry_min_timeout_ms,
            "max_timeout_ms": self.max_timeout_ms
            if self.max_timeout_ms is not None
            else settings.default_retry_max_timeout_ms,
            "randomize": self.randomize
            if self.randomize is not None
            else settings.default_retry_randomize,
        }

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def backoff_ms(policy: dict[str, Any], attempt: int, rng: random.Random | None = None) -> float:
    """Delay before the attempt after ``attempt`` (1-based):
    min(max_timeout, min_timeout × factor^(attempt−1) × r), r ∈ [1, 2) when randomize."""
    delay = policy["min_timeout_ms"] * policy["factor"] ** (attempt - 1)
    if policy.get("randomize"):
        delay *= 1 + (rng or random).random()
    return float(min(policy["max_timeout_ms"], delay))
