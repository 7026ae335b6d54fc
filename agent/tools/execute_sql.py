"""``execute_sql``: one read-only query, row-capped, time-limited, cut to fit the context."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from agent.tools.base import ToolContext, parse_input
from connectors import QueryResult

SPEC = {
    "name": "execute_sql",
    "description": (
        "Run ONE read-only SELECT query on a data source and see the first rows. Anything "
        "else (INSERT, UPDATE, DELETE, DDL, COPY, SET, several statements) is refused. Use "
        "fully qualified table names from search_catalog."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "sql": {"type": "string"},
            "data_source": {"type": "string"},
        },
        "required": ["sql"],
    },
}


class _Input(BaseModel):
    sql: str = Field(min_length=1)
    data_source: str | None = None


def run(ctx: ToolContext, data: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
    args = parse_input(_Input, data)
    source = ctx.source(args.data_source)
    result = ctx.run_sql(source, args.sql, ctx.settings.sql_max_rows)
    ctx.state.queries.append({"id": tool_use_id, "data_source": source.id, "sql": args.sql,
                              "row_count": result.row_count})
    return fit_result(result, ctx.settings.result_max_chars, ctx.settings.result_max_value_chars)


def fit_result(result: QueryResult, max_chars: int, max_value_chars: int) -> dict[str, Any]:
    """Rows as the model sees them: long values cut, then trailing rows dropped until the
    JSON fits ``max_chars`` (a wide result must not crowd out the conversation)."""
    rows = [[_cut(v, max_value_chars) for v in row] for row in result.rows]
    out: dict[str, Any] = {
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "rows": rows,
        "row_count": result.row_count,
        "has_more_rows": result.has_more_rows,
    }
    size = len(json.dumps(out, default=str))
    while rows and size > max_chars:
        # drop a proportional chunk at once: O(log n) re-measures instead of one per row
        keep = max(0, min(len(rows) - 1, int(len(rows) * max_chars / size)))
        del rows[keep:]
        out["truncated_to_rows"] = len(rows)
        size = len(json.dumps(out, default=str))
    return out


def _cut(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "…"
    return value
