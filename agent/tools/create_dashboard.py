"""``create_dashboard``: rows of this run's metrics on a 12-column grid."""

from __future__ import annotations

from typing import Any

from agent.artifacts import DashboardSpec, artifact_id
from agent.errors import ToolError
from agent.tools.base import ToolContext, parse_input

SPEC = {
    "name": "create_dashboard",
    "description": (
        "Create a dashboard from metrics made in this run: rows of 1-4 metric ids, each row's "
        "columnSizes one width per metric, each >= 3, summing to 12 (e.g. [12], [6,6], "
        "[4,8], [4,4,4], [3,3,3,3])."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "items": {"type": "array", "items": {"type": "string"}},
                        "columnSizes": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["items", "columnSizes"],
                },
            },
        },
        "required": ["name", "rows"],
    },
}


def run(ctx: ToolContext, data: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
    spec = parse_input(DashboardSpec, data)
    unknown = [m for row in spec.rows for m in row.items if m not in ctx.state.metrics]
    if unknown:
        raise ToolError(f"Unknown metric ids {unknown}: create the metrics first and use the "
                        "ids create_metric returned.")
    dash_id = artifact_id(ctx.run_id, tool_use_id)
    item = {"spec": spec.model_dump(), "review": None}
    ctx.state.dashboards[dash_id] = item
    if ctx.persist is not None:
        ctx.persist({"id": dash_id, "type": "dashboard", "title": spec.name, "content": item})
    return {"id": dash_id, "metrics": sum(len(r.items) for r in spec.rows)}
