"""The agent's state between turns: plain JSON, recorded after every turn's tool calls so
a resumed run restores it from the record instead of re-running tools."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["AgentState"]


@dataclass
class AgentState:
    phase: str = "initializing"
    step: int = 0
    tool_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    plan: dict[str, Any] | None = None
    queries: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    review_rounds: int = 0
    findings: list[str] = field(default_factory=list)
    response: str | None = None
    returned: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentState:
        return cls(**data)

    def artifacts(self, only: list[str] | None = None) -> list[dict[str, Any]]:
        """The output's artifact list: metrics, then dashboards (or just ``only``)."""
        out = []
        for kind, items in (("metric", self.metrics), ("dashboard", self.dashboards)):
            for art_id, item in items.items():
                if only is None or art_id in only:
                    out.append({"id": art_id, "type": kind, "title": item["spec"]["name"],
                                "content": item})
        return out
