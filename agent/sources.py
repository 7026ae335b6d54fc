"""The one place the agent meets data sources: ``runtime.datasources`` for credentials and
catalogs, ``connectors`` for warehouse sessions. Swapping the registry touches only here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.errors import DataSourceError
from agent.sql_guard import dialect_for
from connectors import Catalog, Connector, QueryResult, connect
from runtime import datasources

__all__ = ["INTROSPECT_TASK", "Source", "SourceSessions", "load_catalog", "resolve"]

INTROSPECT_TASK = "introspect-data"


@dataclass
class Source:
    id: str
    name: str
    type: str
    credentials: Any = field(repr=False)

    @property
    def dialect(self) -> str:
        return dialect_for(self.type)


def resolve(ids_or_names: list[str] | None) -> list[Source]:
    """The named sources (ids or names), or every registered source when none is named."""
    if not ids_or_names:
        ids_or_names = [info.id for info in datasources.list_all()] or [datasources.SAMPLE_NAME]
    out: list[Source] = []
    for key in dict.fromkeys(ids_or_names):  # keep order, drop duplicates
        try:
            ds = datasources.get(key)
        except datasources.DataSourceNotFoundError as exc:
            raise DataSourceError(str(exc), details={"data_source": key}) from exc
        if all(s.id != ds.id for s in out):
            out.append(Source(ds.id, ds.name, ds.type, ds.credentials))
    return out


def load_catalog(source: Source) -> Catalog | None:
    return datasources.load_catalog(source.id)


class SourceSessions:
    """One connector per source for the whole run, opened on first query, closed at the end
    (warehouse logins cost seconds on Snowflake/BigQuery; a run issues dozens of queries)."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = {s.id: s for s in sources}
        self._open: dict[str, Connector] = {}

    def query(self, source_id: str, sql: str, max_rows: int, timeout_s: float) -> QueryResult:
        conn = self._open.get(source_id)
        if conn is None:
            conn = self._open[source_id] = connect(self.sources[source_id].credentials)
        return conn.query(sql, max_rows=max_rows, timeout_s=timeout_s)

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()
