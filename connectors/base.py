"""The ``Connector`` interface every warehouse module implements.

A connector opens its driver connection lazily (on the first call) and holds one session.
It is not thread-safe: use one connector per thread or task. Sessions are read-only at the
driver or server level where the warehouse allows it; writes raise
:class:`~connectors.errors.ReadOnlyViolationError`.

Subclasses implement the underscore hooks; the public methods add what every warehouse
shares: error translation with secrets scrubbed, value normalisation, ``max_rows + 1``
look-ahead, filtering, and column profiling over a bounded sample.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from connectors._values import normalize_row
from connectors.catalog import (
    MAX_SAMPLE_VALUES,
    Catalog,
    ColumnProfile,
    IntrospectionFilters,
    Table,
)
from connectors.credentials import secret_values
from connectors.errors import ConnectorError, scrub

__all__ = [
    "ConnectionInfo", "Connector", "Params", "QueryColumn", "QueryResult", "RawResult",
    "quote_identifier",
]

Params = Sequence[Any] | dict[str, Any] | None

DEFAULT_MAX_ROWS = 1000
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_PROFILE_SAMPLE_ROWS = 1000


class QueryColumn(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    type: str
    """The warehouse's type name for the result column (``int4``, ``VARCHAR``, ...)."""


class QueryResult(BaseModel):
    """Rows are lists in column order, values normalised by :mod:`connectors._values`."""

    columns: list[QueryColumn]
    rows: list[list[Any]]
    row_count: int
    has_more_rows: bool
    """True when the statement produced more than ``max_rows`` rows (one extra was read)."""
    elapsed_ms: float


class ConnectionInfo(BaseModel):
    warehouse_type: str
    server_version: str | None = None
    latency_ms: float


@dataclass
class RawResult:
    """What a connector's ``_execute`` returns: driver values, at most max_rows + 1 rows."""

    columns: list[QueryColumn]
    rows: Sequence[Sequence[Any]]


class Connector(abc.ABC):
    """One warehouse session. Use as a context manager so ``close()`` always runs."""

    warehouse_type: ClassVar[str]
    paramstyle: ClassVar[str] = "format"
    """The driver's placeholder style for ``query(params=...)`` (PEP 249 names)."""

    def __init__(self, credentials: Any) -> None:
        self.credentials = credentials
        self._secrets = secret_values(credentials)

    # -- public API -------------------------------------------------------------------

    def test_connection(self, timeout_s: float = 10.0) -> ConnectionInfo:
        """Connect (if needed) and run a trivial query; raise a ConnectorError on failure."""
        start = time.perf_counter()
        with self._translating():
            version = self._server_version(timeout_s)
        return ConnectionInfo(
            warehouse_type=self.warehouse_type,
            server_version=version,
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
        )

    def query(
        self,
        sql: str,
        params: Params = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> QueryResult:
        """Run one read-only statement; the warehouse stops it after ``timeout_s``."""
        if max_rows < 0:
            raise ValueError("max_rows must be >= 0")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        start = time.perf_counter()
        with self._translating():
            raw = self._execute(sql, params, max_rows + 1, timeout_s)
        rows = [normalize_row(r) for r in raw.rows[:max_rows]]
        return QueryResult(
            columns=raw.columns,
            rows=rows,
            row_count=len(rows),
            has_more_rows=len(raw.rows) > max_rows,
            elapsed_ms=round((time.perf_counter() - start) * 1000, 2),
        )

    def introspect(
        self,
        filters: IntrospectionFilters | dict[str, Any] | None = None,
        *,
        profile: bool = False,
        profile_sample_rows: int = DEFAULT_PROFILE_SAMPLE_ROWS,
    ) -> Catalog:
        """Read the catalog; with ``profile=True`` also profile every table (slower)."""
        if isinstance(filters, dict):
            filters = IntrospectionFilters.model_validate(filters)
        filters = filters or IntrospectionFilters()
        with self._translating():
            catalog = self._introspect(filters)
        catalog.tables = [t for t in catalog.tables if filters.match_table(t.schema, t.name)]
        if profile:
            catalog.tables = [self.profile_table(t, profile_sample_rows) for t in catalog.tables]
        return catalog

    def profile_table(
        self, table: Table, sample_rows: int = DEFAULT_PROFILE_SAMPLE_ROWS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> Table:
        """Return ``table`` with each column's profile computed over at most ``sample_rows``
        rows read with the warehouse's sampling clause (one statement per table)."""
        sql = self._sample_sql(table, sample_rows)
        with self._translating():
            raw = self._execute(sql, None, sample_rows, timeout_s)
        names = [c.name for c in raw.columns]
        columns = []
        for col in table.columns:
            if col.name not in names:
                columns.append(col)
                continue
            idx = names.index(col.name)
            profile = _profile([row[idx] for row in raw.rows])
            columns.append(col.model_copy(update={"profile": profile}))
        return table.model_copy(update={"columns": columns})

    def close(self) -> None:
        """Close the driver connection. Safe to call twice; never raises driver errors."""
        # Closing a broken connection must not mask the error that broke it.
        with suppress(Exception):
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- hooks for subclasses ---------------------------------------------------------

    @abc.abstractmethod
    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        """Run ``sql`` with a server-side timeout; return at most ``fetch`` rows."""

    @abc.abstractmethod
    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        """Batched catalog queries; table-name filtering is re-applied by the caller."""

    @abc.abstractmethod
    def _close(self) -> None: ...

    @abc.abstractmethod
    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        """Map a driver exception to our tree, or None when it is not a driver error."""

    @abc.abstractmethod
    def _sample_sql(self, table: Table, limit: int) -> str:
        """A SELECT of at most ``limit`` rows of ``table``, identifiers quoted."""

    def _server_version(self, timeout_s: float) -> str | None:
        """Overridden by connectors that can report a version; the default just pings."""
        self._execute("SELECT 1", None, 1, timeout_s)
        return None

    # -- shared plumbing --------------------------------------------------------------

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    @contextmanager
    def _translating(self) -> Iterator[None]:
        """Translate driver exceptions raised inside the block; chain the original."""
        try:
            yield
        except ConnectorError:
            raise
        except Exception as exc:
            ours = self._translate_error(exc)
            if ours is None:
                raise
            ours.message = self.scrub(ours.message)
            ours.args = (ours.message,)
            ours.warehouse = self.warehouse_type
            raise ours from exc


def quote_identifier(name: str, quote: str = '"', close: str | None = None) -> str:
    """Quote one identifier part, doubling the closing quote character inside it.

    ``"`` for most warehouses, ``quote="`"`` for MySQL/BigQuery/Databricks,
    ``quote="[", close="]"`` for SQL Server.
    """
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    end = close or quote
    return f"{quote}{name.replace(end, end * 2)}{end}"


def _profile(values: list[Any]) -> ColumnProfile:
    non_null = [v for v in values if v is not None]
    distinct = _distinct(non_null)
    lo = hi = None
    try:
        if non_null:
            lo, hi = min(non_null), max(non_null)
    except TypeError:  # unorderable values (JSON, arrays, mixed types)
        lo = hi = None
    samples = normalize_row(distinct[:MAX_SAMPLE_VALUES])
    return ColumnProfile(
        sample_size=len(values),
        distinct_count=len(distinct),
        null_count=len(values) - len(non_null),
        min=normalize_row([lo])[0],
        max=normalize_row([hi])[0],
        sample_values=[_truncate(v) for v in samples],
    )


def _distinct(values: list[Any]) -> list[Any]:
    seen: dict[Any, None] = {}
    unhashable: list[Any] = []
    for v in values:
        try:
            seen.setdefault(v, None)
        except TypeError:
            if v not in unhashable:
                unhashable.append(v)
    return list(seen) + unhashable


def _truncate(value: Any, limit: int = 100) -> Any:
    # Long texts would bloat the catalog the agent reads; 100 chars tell it enough.
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value
