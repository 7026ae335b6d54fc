"""The agent's tools: one module per tool, each with ``SPEC`` (the Messages API tool
definition) and ``run(ctx, input, tool_use_id) -> dict``; a ``ToolError`` goes back to the
model as an error result."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from agent.errors import ToolError
from agent.phases import check_tool_allowed
from agent.tools import (
    create_dashboard,
    create_metric,
    execute_sql,
    finish,
    search_catalog,
    submit_plan,
)
from agent.tools.base import ToolContext

__all__ = ["TOOLS", "ToolContext", "call_tool", "tool_specs"]

TOOLS: dict[str, ModuleType] = {
    m.SPEC["name"]: m
    for m in (search_catalog, submit_plan, execute_sql, create_metric, create_dashboard,
              finish)
}


def tool_specs() -> list[dict[str, Any]]:
    return [m.SPEC for m in TOOLS.values()]


def call_tool(ctx: ToolContext, block: dict[str, Any]) -> dict[str, Any]:
    """Run one tool_use block; return its tool_result block (errors included)."""
    ctx.state.tool_calls += 1
    name = block["name"]
    try:
        check_tool_allowed(ctx.state, name)
        output = TOOLS[name].run(ctx, block.get("input") or {}, block["id"])
    except ToolError as exc:
        return {"type": "tool_result", "tool_use_id": block["id"], "content": exc.message,
                "is_error": True}
    return {"type": "tool_result", "tool_use_id": block["id"],
            "content": json.dumps(output, default=str, separators=(",", ":"))}
