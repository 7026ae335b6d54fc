"""Recorded model conversations for the agent tests (Messages API JSON, see
``agent.testing.RecordedAnthropic``). ``$result:<tool id>.id`` names an id the agent made."""

from __future__ import annotations

from typing import Any

from agent.testing import assistant, error_response, text, tool_use

MONTHLY_SQL = ("SELECT date_trunc('month', order_date)::DATE AS month, count(*) AS orders "
               "FROM orders WHERE status <> 'cancelled' GROUP BY 1 ORDER BY 1")
CATEGORY_SQL = ("SELECT p.category, sum(i.quantity * i.unit_price) AS revenue "
                "FROM order_items i JOIN products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC")
EMPTY_SQL = "SELECT p.category, count(*) AS n FROM products p WHERE p.category = 'Spaceships' " \
            "GROUP BY 1"


def line_chart(x: str, y: str) -> dict[str, Any]:
    return {"selectedChartType": "line", "barAndLineAxis": {"x": [x], "y": [y]},
            "columnLabelFormats": {x: {"columnType": "date", "style": "date"},
                                   y: {"columnType": "number", "style": "number"}}}


def bar_chart(x: str, y: str) -> dict[str, Any]:
    return {"selectedChartType": "bar", "barAndLineAxis": {"x": [x], "y": [y]}}


def search() -> dict[str, Any]:
    return assistant(text("Let me find the order tables."),
                     tool_use("search_catalog", {"query": "orders revenue by month category"},
                              "tu_search"))


def plan() -> dict[str, Any]:
    return assistant(tool_use("submit_plan", {
        "steps": ["count orders per month", "revenue per product category", "dashboard"],
        "metrics": ["Monthly orders", "Revenue by category"],
        "tables": ["orders", "order_items", "products"]}, "tu_plan"))


def metric(tool_id: str, name: str, sql: str, chart: dict[str, Any],
           replaces: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"name": name, "description": f"{name} from the shop data",
                            "timeFrame": "All time", "sql": sql, "chartConfig": chart}
    if replaces:
        args["replaces"] = replaces
    return assistant(tool_use("create_metric", args, tool_id))


def dashboard() -> dict[str, Any]:
    return assistant(tool_use("create_dashboard", {
        "name": "Shop overview", "description": "Orders and revenue",
        "rows": [{"items": ["$result:tu_m1.id", "$result:tu_m2.id"], "columnSizes": [6, 6]}]},
        "tu_dash"))


def finish(ids: list[str], tool_id: str = "tu_finish") -> dict[str, Any]:
    return assistant(tool_use("finish", {"response": "Orders grew steadily; Coffee leads revenue.",
                                         "artifact_ids": ids}, tool_id))


def happy_path(delay_s: float = 0.0) -> list[Any]:
    turns: list[Any] = [
        search(),
        plan(),
        assistant(tool_use("execute_sql", {"sql": MONTHLY_SQL}, "tu_sql")),
        metric("tu_m1", "Monthly orders", MONTHLY_SQL, line_chart("month", "orders")),
        metric("tu_m2", "Revenue by category", CATEGORY_SQL, bar_chart("category", "revenue")),
        dashboard(),
        finish(["$result:tu_m1.id", "$result:tu_m2.id", "$result:tu_dash.id"]),
    ]
    if delay_s:
        for t in turns:
            t["delay_s"] = delay_s
    return turns


def write_attempts() -> list[Any]:
    return [
        search(),
        plan(),
        assistant(tool_use("execute_sql", {"sql": "DELETE FROM orders"}, "tu_del")),
        assistant(tool_use("execute_sql",
                           {"sql": "SELECT count(*) AS n FROM orders; DROP TABLE orders"},
                           "tu_drop")),
        assistant(text("Understood, read-only."),
                  tool_use("execute_sql", {"sql": "SELECT count(*) AS n FROM orders"},
                           "tu_count")),
        metric("tu_m1", "Order count", "SELECT count(*) AS n FROM orders",
               {"selectedChartType": "metric", "metricColumnId": "n"}),
        finish(["$result:tu_m1.id"]),
    ]


def budget_runs_out() -> list[Any]:
    return [
        search(),
        plan(),
        metric("tu_m1", "Monthly orders", MONTHLY_SQL, line_chart("month", "orders")),
        assistant(tool_use("execute_sql", {"sql": CATEGORY_SQL}, "tu_more")),
    ]


def review_sends_back() -> list[Any]:
    return [
        search(),
        plan(),
        metric("tu_m1", "Spaceship sales", EMPTY_SQL, bar_chart("category", "n")),
        finish(["$result:tu_m1.id"], "tu_finish1"),
        metric("tu_fix", "Products per category",
               "SELECT p.category, count(*) AS n FROM products p GROUP BY 1",
               bar_chart("category", "n"), replaces="$result:tu_m1.id"),
        finish(["$result:tu_m1.id"], "tu_finish2"),
    ]


def overloaded_then_ok() -> list[Any]:
    overloaded = error_response(529, "overloaded_error", "Overloaded",
                                headers={"retry-after-ms": "10"})
    return [[overloaded, overloaded, search()], plan(),
            metric("tu_m1", "Order count", "SELECT count(*) AS n FROM orders",
                   {"selectedChartType": "metric", "metricColumnId": "n"}),
            finish(["$result:tu_m1.id"])]


def unauthorized() -> list[Any]:
    return [error_response(401, "authentication_error", "invalid x-api-key")]


def rate_limited_then_ok(retry_after_s: int) -> list[Any]:
    """One 429 saying how long to wait (the SDK's retries are off in its test), then the
    usual run."""
    limited = error_response(429, "rate_limit_error", "Number of request tokens has exceeded "
                             "your per-minute rate limit",
                             headers={"retry-after": str(retry_after_s)})
    return [[limited, search()], plan(),
            metric("tu_m1", "Order count", "SELECT count(*) AS n FROM orders",
                   {"selectedChartType": "metric", "metricColumnId": "n"}),
            finish(["$result:tu_m1.id"])]
