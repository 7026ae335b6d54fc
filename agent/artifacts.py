"""Metric and dashboard specs (the reference service's YAML formats, as JSON) and the
checks that tie a chart to the columns its SQL actually returns."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors import QueryColumn

__all__ = [
    "ChartConfig", "DashboardRow", "DashboardSpec", "MetricSpec", "artifact_id", "chart_problems",
]

ChartType = Literal["bar", "line", "scatter", "pie", "combo", "metric", "table"]
_NAMESPACE = uuid.UUID("8c5b0a4e-2f57-4b8e-9a53-6f0f1c2d7e11")
_NUMERIC = ("INT", "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL", "NUMBER", "BIGINT",
            "HUGEINT", "SMALLINT", "TINYINT", "MONEY")


def artifact_id(run_id: str, tool_use_id: str) -> str:
    """Deterministic: the same tool call in the same run always makes the same id, so a
    tool step that runs again after a crash upserts instead of duplicating."""
    return str(uuid.uuid5(_NAMESPACE, f"{run_id}:{tool_use_id}"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Axis(_Model):
    x: list[str] = Field(default_factory=list)
    y: list[str] = Field(default_factory=list)
    y2: list[str] = Field(default_factory=list)
    category: list[str] = Field(default_factory=list)

    @field_validator("x", "y", "y2", "category", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class ColumnFormat(_Model):
    columnType: Literal["number", "text", "date"] = "text"  # noqa: N815 - the spec's keys
    style: Literal["currency", "percent", "number", "string", "date"] = "string"
    displayName: str | None = None  # noqa: N815


class ChartConfig(_Model):
    selectedChartType: ChartType  # noqa: N815 - keys follow the reference artifact format
    columnLabelFormats: dict[str, ColumnFormat] = Field(default_factory=dict)  # noqa: N815
    barAndLineAxis: Axis | None = None  # noqa: N815
    scatterAxis: Axis | None = None  # noqa: N815
    pieChartAxis: Axis | None = None  # noqa: N815
    comboChartAxis: Axis | None = None  # noqa: N815
    metricColumnId: str | None = None  # noqa: N815
    tableColumnOrder: list[str] | None = None  # noqa: N815

    @model_validator(mode="after")
    def _block_for_type(self) -> ChartConfig:
        needed = {"bar": "barAndLineAxis", "line": "barAndLineAxis", "scatter": "scatterAxis",
                  "pie": "pieChartAxis", "combo": "comboChartAxis",
                  "metric": "metricColumnId"}.get(self.selectedChartType)
        if needed and getattr(self, needed) is None:
            raise ValueError(f"a {self.selectedChartType} chart needs {needed}")
        return self

    def axis(self) -> Axis | None:
        return (self.barAndLineAxis or self.scatterAxis or self.pieChartAxis
                or self.comboChartAxis)


class MetricSpec(_Model):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    timeFrame: str = Field(min_length=1)  # noqa: N815
    sql: str = Field(min_length=1)
    chartConfig: ChartConfig  # noqa: N815
    data_source: str | None = None
    """Id or name of the source the SQL runs on; optional with one source."""


class DashboardRow(_Model):
    items: list[str] = Field(min_length=1, max_length=4)
    columnSizes: list[int]  # noqa: N815

    @model_validator(mode="after")
    def _grid(self) -> DashboardRow:
        if len(self.columnSizes) != len(self.items):
            raise ValueError("columnSizes needs one width per item")
        if sum(self.columnSizes) != 12:
            raise ValueError(f"columnSizes must sum to 12, got {sum(self.columnSizes)}")
        if any(w < 3 for w in self.columnSizes):
            raise ValueError("each column width must be at least 3")
        return self


class DashboardSpec(_Model):
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    rows: list[DashboardRow] = Field(min_length=1)


def chart_problems(chart: ChartConfig, columns: list[QueryColumn]) -> list[str]:
    """Everything in the chart config that the result's columns cannot satisfy."""
    names = {c.name: c.type for c in columns}
    problems = []
    axis = chart.axis()
    referenced: list[tuple[str, str]] = []
    if axis is not None:
        referenced += [(c, "x") for c in axis.x] + [(c, "category") for c in axis.category]
        referenced += [(c, "y") for c in axis.y + axis.y2]
        if not axis.x or not axis.y:
            problems.append("the chart axis needs at least one x and one y column")
    if chart.metricColumnId:
        referenced.append((chart.metricColumnId, "y"))
    referenced += [(c, "order") for c in chart.tableColumnOrder or []]
    referenced += [(c, "format") for c in chart.columnLabelFormats]
    for col, role in referenced:
        if col not in names:
            problems.append(f"column {col!r} ({role}) is not in the result; "
                            f"columns are {sorted(names)}")
        elif role == "y" and chart.selectedChartType != "table" and not _numeric(names[col]):
            problems.append(f"column {col!r} is plotted as a value but has type {names[col]}")
    return problems


def _numeric(type_name: str) -> bool:
    upper = type_name.upper()
    return any(t in upper for t in _NUMERIC)
