"""Input and output of the ``analyst-agent`` task."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AgentOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=15, ge=1, le=50)
    """Model turns the agent may take before it fails with MAX_STEPS."""
    model: str | None = None
    """A model alias (``sonnet``, ``claude-3-sonnet`` …) mapped by BUSTER_AGENT_MODEL_ALIASES."""
    enable_streaming: bool = False


class AnalystAgentInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: UUID
    query: str = Field(min_length=1)
    data_sources: list[str] | None = None
    """Registered data-source ids or names; omitted: every registered source."""
    options: AgentOptions = Field(default_factory=AgentOptions)

    @field_validator("query")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("query must not be blank")
        return v.strip()


class Artifact(BaseModel):
    id: str
    type: Literal["metric", "dashboard", "query", "chart"]
    title: str
    content: dict[str, Any]


class AgentResult(BaseModel):
    response: str
    artifacts: list[Artifact]


class AgentErrorInfo(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class AnalystAgentOutput(BaseModel):
    success: bool
    session_id: str
    result: AgentResult | None = None
    error: AgentErrorInfo | None = None
