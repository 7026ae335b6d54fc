"""``finish``: ends the run, but only after the agent's own review passes.

The review is done by code, not taken from the model's word: every metric is re-run and
its chart re-checked. Findings go back as a tool error; the model fixes and calls finish
again.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.errors import ToolError
from agent.phases import Phase, move
from agent.review import review
from agent.tools.base import ToolContext, parse_input

SPEC = {
    "name": "finish",
    "description": (
        "Finish with your answer to the user (markdown, no headers) and the ids of the "
        "metrics and dashboards to return. Every metric is re-run and checked first; if the "
        "review finds problems you get them back to fix, then call finish again."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "response": {"type": "string"},
            "artifact_ids": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["response"],
    },
}


class _Input(BaseModel):
    response: str = Field(min_length=1)
    artifact_ids: list[str] | None = None


def run(ctx: ToolContext, data: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
    args = parse_input(_Input, data)
    state = ctx.state
    known = set(state.metrics) | set(state.dashboards)
    unknown = [a for a in args.artifact_ids or [] if a not in known]
    if unknown:
        raise ToolError(f"Unknown artifact ids {unknown}.")
    move(state, Phase.REVIEWING)
    findings = review(ctx)
    state.findings = findings
    if findings:
        state.review_rounds += 1
        raise ToolError(
            "Review found problems; fix them (create_metric with replaces=<id> keeps the id) "
            "and call finish again:\n- " + "\n- ".join(findings)
        )
    state.response = args.response
    state.returned = args.artifact_ids
    move(state, Phase.COMPLETED)
    return {"completed": True, "reviewed_metrics": len(state.metrics)}
