"""``submit_plan``: the model commits to a plan before it may create artifacts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.phases import Phase, move
from agent.tools.base import ToolContext, parse_input

SPEC = {
    "name": "submit_plan",
    "description": (
        "Commit to an analysis plan before creating metrics or dashboards: the steps you "
        "will take, the metrics you will build and the tables they use."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "metrics": {"type": "array", "items": {"type": "string"}},
            "tables": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["steps"],
    },
}


class _Input(BaseModel):
    steps: list[str] = Field(min_length=1)
    metrics: list[str] = Field(default_factory=list)
    tables: list[str] = Field(default_factory=list)


def run(ctx: ToolContext, data: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
    plan = parse_input(_Input, data)
    ctx.state.plan = plan.model_dump()
    if ctx.state.phase in (Phase.SEARCHING, Phase.PLANNING):
        move(ctx.state, Phase.ANALYZING)
    return {"accepted": True, "next": "Run SQL to check your queries, then create metrics "
            "and a dashboard, then call finish."}
