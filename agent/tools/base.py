"""What every tool gets: the run's state, sources, sessions, indexes and settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from agent.errors import ToolError
from agent.search import CatalogIndex, index_for
from agent.settings import AgentSettings
from agent.sources import Source, SourceSessions
from agent.sql_guard import check_query
from agent.state import AgentState
from connectors import Catalog, ConnectorError, QueryResult

__all__ = ["ToolContext", "parse_input"]

M = TypeVar("M", bound=BaseModel)


@dataclass
class ToolContext:
    state: AgentState
    settings: AgentSettings
    sources: list[Source]
    catalogs: dict[str, Catalog]
    sessions: SourceSessions
    run_id: str
    session_id: str
    #: stores an artifact row; None outside a run (benchmarks)
    persist: Callable[[dict[str, Any]], None] | None = None
    _indexes: dict[str, CatalogIndex] = field(default_factory=dict)

    def source(self, key: str | None) -> Source:
        if key is None:
            if len(self.sources) == 1:
                return self.sources[0]
            names = ", ".join(s.name for s in self.sources)
            raise ToolError(f"Several data sources are available ({names}): name one in "
                            "data_source.")
        for s in self.sources:
            if key in (s.id, s.name):
                return s
        raise ToolError(f"Unknown data source {key!r}; available: "
                        f"{', '.join(s.name for s in self.sources)}")

    def index(self, source: Source) -> CatalogIndex:
        if source.id not in self._indexes:
            self._indexes[source.id] = index_for(source.id, self.catalogs[source.id])
        return self._indexes[source.id]

    def run_sql(self, source: Source, sql: str, max_rows: int) -> QueryResult:
        """Guard, then run: the guard's refusal is raised before any warehouse call."""
        checked = check_query(sql, source.dialect)
        try:
            return self.sessions.query(source.id, checked, max_rows, self.settings.sql_timeout_s)
        except ConnectorError as exc:
            raise ToolError(f"The query failed ({exc.code}): {exc.message}") from exc


def parse_input(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(input)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ToolError(f"Invalid input: {problems}") from None
