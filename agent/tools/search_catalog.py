"""``search_catalog``: rank tables and columns for a question across the run's sources."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.phases import Phase, move
from agent.search import merge_hits
from agent.tools.base import ToolContext, parse_input

SPEC = {
    "name": "search_catalog",
    "description": (
        "Find the tables and columns relevant to a question. Ranks tables by their names, "
        "comments, column names and sample values. Returns fully qualified table names, "
        "columns with types (matching ones first), and join keys. Use it before writing SQL."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Keywords or the question."},
            "data_source": {"type": "string", "description": "Limit to one source."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20},
        },
        "required": ["query"],
    },
}


class _Input(BaseModel):
    query: str = Field(min_length=1)
    data_source: str | None = None
    limit: int | None = Field(default=None, ge=1, le=20)


def run(ctx: ToolContext, data: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
    args = parse_input(_Input, data)
    limit = args.limit or ctx.settings.search_limit
    sources = [ctx.source(args.data_source)] if args.data_source else ctx.sources
    hits = [(s.name, hit) for s in sources for hit in ctx.index(s).search(args.query, limit)]
    if ctx.state.phase == Phase.SEARCHING:
        move(ctx.state, Phase.PLANNING)
    results = merge_hits(hits, limit)
    return {"results": results, "note": None if results else
            "No table matched; try other words (synonyms, column names)."}
