"""The review: re-run every metric, check it returns rows and that its chart fits, and
check every dashboard names live metrics. Findings are sentences the model can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.artifacts import ChartConfig, chart_problems
from agent.errors import ToolError

if TYPE_CHECKING:
    from agent.tools.base import ToolContext

__all__ = ["review"]


def review(ctx: ToolContext) -> list[str]:
    findings: list[str] = []
    for metric_id, item in ctx.state.metrics.items():
        spec = item["spec"]
        label = f"metric {metric_id} ({spec['name']!r})"
        try:
            result = ctx.run_sql(ctx.source(item["data_source_id"]), spec["sql"],
                                 ctx.settings.review_max_rows)
        except ToolError as exc:
            item["review"] = {"status": "failed", "reason": exc.message}
            findings.append(f"{label}: its SQL failed on re-run: {exc.message}")
            continue
        problems = chart_problems(ChartConfig.model_validate(spec["chartConfig"]),
                                  result.columns)
        if result.row_count == 0:
            problems.insert(0, "its SQL returns no rows")
        item["review"] = {"status": "failed" if problems else "passed",
                          "row_count": result.row_count, "problems": problems}
        findings += [f"{label}: {p}" for p in problems]
    for dash_id, item in ctx.state.dashboards.items():
        missing = [m for row in item["spec"]["rows"] for m in row["items"]
                   if m not in ctx.state.metrics]
        item["review"] = {"status": "failed" if missing else "passed"}
        if missing:
            findings.append(f"dashboard {dash_id}: names unknown metrics {missing}")
    if ctx.persist is not None and not findings:
        for metric_id, item in ctx.state.metrics.items():
            ctx.persist({"id": metric_id, "type": "metric", "title": item["spec"]["name"],
                         "content": item})
        for dash_id, item in ctx.state.dashboards.items():
            ctx.persist({"id": dash_id, "type": "dashboard", "title": item["spec"]["name"],
                         "content": item})
    return findings
