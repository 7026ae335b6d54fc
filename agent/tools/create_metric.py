"""``create_metric``: a named, charted SQL metric, validated by running it."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agent.artifacts import MetricSpec, artifact_id, chart_problems
from agent.errors import ToolError
from agent.tools.base import ToolContext, parse_input

SPEC = {
    "name": "create_metric",
    "description": (
        "Create (or, with replaces=<metric id>, fix) a metric: name, description, timeFrame "
        "(e.g. 'Last 12 months', 'All time'), one read-only SQL query and a chartConfig. "
        "The SQL is run to validate it and the chart config is checked against the result's "
        "columns. chartConfig: selectedChartType (bar|line|scatter|pie|combo|metric|table) "
        "and its block: barAndLineAxis {x: [col], y: [col], category?: [col]} for bar/line, "
        "scatterAxis, pieChartAxis, comboChartAxis {x, y, y2}, metricColumnId for metric, "
        "tableColumnOrder for table; columnLabelFormats {col: {columnType, style}} optional."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "timeFrame": {"type": "string"},
            "sql": {"type": "string"},
            "chartConfig": {"type": "object"},
            "data_source": {"type": "string"},
            "replaces": {"type": "string", "description": "Id of a metric this one fixes."},
        },
        "required": ["name", "timeFrame", "sql", "chartConfig"],
    },
}


class _Input(MetricSpec):
    replaces: str | None = Field(default=None)


def run(ctx: ToolContext, data: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
    args = parse_input(_Input, data)
    if args.replaces is not None and args.replaces not in ctx.state.metrics:
        raise ToolError(f"No metric with id {args.replaces!r} to replace.")
    spec = MetricSpec.model_validate(args.model_dump(exclude={"replaces"}))
    source = ctx.source(spec.data_source)
    result = ctx.run_sql(source, spec.sql, ctx.settings.review_max_rows)
    problems = chart_problems(spec.chartConfig, result.columns)
    if problems:
        raise ToolError("The chart config does not fit the query result: " + "; ".join(problems))
    metric_id = args.replaces or artifact_id(ctx.run_id, tool_use_id)
    item = {
        "spec": {**spec.model_dump(exclude_none=True), "data_source": source.name},
        "data_source_id": source.id,
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "row_count": result.row_count,
        "has_more_rows": result.has_more_rows,
        "sample_rows": result.rows[:5],
        "review": None,
    }
    ctx.state.metrics[metric_id] = item
    if ctx.persist is not None:
        ctx.persist({"id": metric_id, "type": "metric", "title": spec.name, "content": item})
    warnings = [] if result.row_count else [
        "The query returned no rows: check its filters (the review rejects empty metrics)."]
    return {"id": metric_id, "replaced": args.replaces is not None,
            "columns": item["columns"], "row_count": result.row_count,
            "sample_rows": item["sample_rows"], "warnings": warnings}
