"""The model client: Anthropic's Messages API with tool use, through the real SDK.

One retry layer: the SDK retries overloaded (529), rate-limited (429), 5xx and connection
errors itself with exponential backoff, ``max_retries`` set explicitly from settings. What
is left after that is translated here into our error tree: an auth failure ends the run at
once (``MODEL_AUTH``), an exhausted retry budget is ``MODEL_UNAVAILABLE`` (the task raises
it so the runtime retries the attempt, replaying the turns already recorded).
"""

from __future__ import annotations

import email.utils
import os
from datetime import UTC, datetime
from typing import Any

import anthropic

from agent.errors import ModelAuthError, ModelRequestError, ModelUnavailableError
from agent.settings import AgentSettings

__all__ = ["ModelClient", "build_client"]


def build_client(settings: AgentSettings) -> anthropic.Anthropic:
    """The SDK client for these settings. ``BUSTER_AGENT_TRANSPORT=recorded:<file>`` swaps
    the HTTP transport for the recorded fake (tests); everything above it is the real SDK."""
    http_client = None
    api_key = None  # None: the SDK reads ANTHROPIC_API_KEY itself
    if settings.transport.startswith("recorded:"):
        from agent.testing import RecordedAnthropic

        http_client = RecordedAnthropic.from_file(settings.transport[len("recorded:"):]).http()
        api_key = os.environ.get("ANTHROPIC_API_KEY") or "recorded-fake-key"
    elif settings.transport:
        raise ValueError(f"unknown BUSTER_AGENT_TRANSPORT {settings.transport!r}")
    return anthropic.Anthropic(
        api_key=api_key,
        base_url=settings.base_url or None,
        max_retries=settings.sdk_max_retries,
        timeout=settings.request_timeout_s,
        http_client=http_client,
    )


class ModelClient:
    """``create`` returns the assistant message as plain JSON (recordable in a step)."""

    def __init__(self, settings: AgentSettings, client: anthropic.Anthropic | None = None):
        self.settings = settings
        self._client = client
        self.requests = 0

    @property
    def client(self) -> anthropic.Anthropic:
        # Built on first use: a run that replays all its turns never builds a client.
        if self._client is None:
            self._client = build_client(self.settings)
        return self._client

    def create(
        self, *, model: str, system: str, messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> dict[str, Any]:
        self.requests += 1
        try:
            message = self.client.messages.create(  # type: ignore[call-overload,unused-ignore]
                model=model,
                max_tokens=self.settings.max_tokens,
                system=system,
                messages=messages,  # type: ignore[arg-type]
                tools=tools,  # type: ignore[arg-type]
            )
        except anthropic.APIStatusError as exc:
            raise _translate_status(exc) from exc
        except (anthropic.APIConnectionError, anthropic.APITimeoutError) as exc:
            raise ModelUnavailableError(
                f"The model API could not be reached after {self.settings.sdk_max_retries} "
                f"retries: {exc}"
            ) from exc
        except anthropic.AnthropicError as exc:
            # Raised before any request, e.g. no API key configured at all.
            raise ModelAuthError(f"The model client is not configured: {exc}") from exc
        return message.model_dump(mode="json", exclude_none=True)


def _translate_status(exc: anthropic.APIStatusError) -> Exception:
    status = exc.status_code
    details: dict[str, Any] = {"status": status, "request_id": exc.request_id}
    message = _api_message(exc)
    if status in (401, 403):
        return ModelAuthError(f"The model API refused our credentials ({status}): {message}",
                              details=details)
    if status in (408, 409, 429) or status >= 500:
        wait_s = retry_after_s(exc.response.headers)
        if wait_s is not None:
            details["retry_after_s"] = wait_s
        return ModelUnavailableError(
            f"The model API is unavailable ({status}) after the SDK's retries: {message}",
            details=details)
    return ModelRequestError(f"The model API rejected the request ({status}): {message}",
                             details=details)


def retry_after_s(headers: Any) -> float | None:
    """How long the API asked us to wait (``retry-after-ms``, or ``retry-after`` in seconds
    or as an HTTP date), or None. The SDK honours it only up to 60 s within its own
    retries; the task's ``catch_error`` uses it to time the next attempt."""
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None  # a header we cannot read: the task's own backoff applies


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
    return str(exc)
