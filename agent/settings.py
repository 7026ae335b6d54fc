"""Agent settings (``BUSTER_AGENT_*``). Model ids live here, never in the agent's logic.

The API key is the SDK's own ``ANTHROPIC_API_KEY``: it never passes through our settings,
payloads or logs.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Aliases a payload may name. The legacy Claude 3 names are accepted because old clients
#: still send them; they map to current models so a retired id never reaches the API.
DEFAULT_MODEL_ALIASES = {
    "default": "claude-sonnet-5-5",
    "sonnet": "claude-sonnet-5-5",
    "opus": "claude-opus-5-5",
    "haiku": "claude-haiku-5-5",
    "claude-3-sonnet": "claude-sonnet-5-5",
    "claude-3-opus": "claude-opus-5-5",
}


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUSTER_AGENT_", extra="ignore")

    #: alias -> model id (JSON in the environment). Unknown names pass through unchanged,
    #: so a new model id works without a release.
    model_aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MODEL_ALIASES))
    #: The alias used when the payload names none.
    default_model: str = "default"
    #: Output tokens per model turn.
    max_tokens: int = 4096
    #: The SDK's own retries for 408/409/429/5xx/529 and connection errors, with its
    #: exponential backoff (0.5 s doubling to 8 s, or the server's retry-after). This is the
    #: one retry layer for model calls; the task's retries cover worker crashes and a model
    #: API still unavailable after these (timed by its retry-after: the task's catch_error).
    sdk_max_retries: int = 4
    #: Seconds per model request (the SDK default, 10 min, would eat the run's budget).
    request_timeout_s: float = 120.0
    #: Base URL override (a proxy or gateway); empty: the SDK's default.
    base_url: str | None = None
    #: At most this many analyst-agent runs execute at once across all workers (the task's
    #: concurrency_limit, read when the task module is imported): a bound on concurrent
    #: Anthropic usage. Empty: no cap beyond the workers' threads.
    concurrency_limit: int | None = Field(default=None, ge=1)
    #: ``recorded:<scenario.json>`` replaces the HTTP transport with the recorded fake in
    #: :mod:`agent.testing` (tests only; it never talks to Anthropic). Empty: the real API.
    transport: str = ""

    #: execute_sql / metric validation limits.
    sql_max_rows: int = 50
    sql_timeout_s: float = 30.0
    #: Rows returned to the model are cut to fit this many characters of JSON.
    result_max_chars: int = 6000
    #: Longer text values in results are truncated to this many characters.
    result_max_value_chars: int = 200
    #: Review re-runs each metric with this row cap.
    review_max_rows: int = 50
    #: search_catalog results per call.
    search_limit: int = 8

    def resolve_model(self, alias: str | None) -> str:
        name = alias or self.default_model
        return self.model_aliases.get(name, name)
