"""What ``Connector.introspect()`` returns: databases → schemas → tables → columns.

Names follow DESIGN.md (``Table.database/schema/name/kind/row_count/comment/columns/
primary_key/foreign_keys``; ``Column.name/data_type/nullable/default/comment/position``).
All models are plain data, JSON round-trippable, so a catalog can be stored and reloaded.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "Catalog",
    "Column",
    "ColumnProfile",
    "Database",
    "ForeignKey",
    "IntrospectionFilters",
    "Schema",
    "Table",
    "TableKind",
]

TableKind = Literal["table", "view", "materialized_view", "external"]
MAX_SAMPLE_VALUES = 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnProfile(_Model):
    """Statistics over a bounded sample of the table (``sample_size`` rows), not the table."""

    sample_size: int
    distinct_count: int
    null_count: int
    min: Any = None
    max: Any = None
    sample_values: list[Any] = Field(default_factory=list, max_length=MAX_SAMPLE_VALUES)


class Column(_Model):
    name: str
    data_type: str
    """The warehouse's own type as written in DDL, modifiers included
    (``character varying(50)``, ``decimal(10,2)``)."""
    nullable: bool = True
    default: str | None = None
    """The default expression as SQL text, not evaluated."""
    comment: str | None = None
    position: int
    """1-based ordinal position in the table."""
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    profile: ColumnProfile | None = None


class ForeignKey(_Model):
    name: str | None = None
    columns: list[str]
    referenced_database: str | None = None
    referenced_schema: str
    referenced_table: str
    referenced_columns: list[str]


# ``schema`` is the name DESIGN.md gives the field. It shadows BaseModel's deprecated
# ``schema()`` classmethod (pydantic warns); instance lookup still returns the field value.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "schema"', category=UserWarning)

    class Table(_Model):
        database: str
        schema: str  # type: ignore[assignment]
        name: str
        kind: TableKind = "table"
        row_count: int | None = None
        """The warehouse's estimate (statistics), not a COUNT(*); None when unknown."""
        size_bytes: int | None = None
        comment: str | None = None
        columns: list[Column] = Field(default_factory=list)
        primary_key: list[str] = Field(default_factory=list)
        foreign_keys: list[ForeignKey] = Field(default_factory=list)
        view_definition: str | None = None

        @property
        def qualified_name(self) -> str:
            return f"{self.database}.{self.schema}.{self.name}"

        def column(self, name: str) -> Column:
            for col in self.columns:
                if col.name == name:
                    return col
            raise KeyError(name)


class Database(_Model):
    name: str
    comment: str | None = None


class Schema(_Model):
    database: str
    name: str
    comment: str | None = None


class Catalog(_Model):
    warehouse_type: str
    databases: list[Database] = Field(default_factory=list)
    schemas: list[Schema] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    introspected_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def counts(self) -> dict[str, int]:
        """Sizes for task outputs and summaries; materialized views count as views."""
        views = sum(1 for t in self.tables if t.kind in ("view", "materialized_view"))
        return {
            "databases": len(self.databases),
            "schemas": len(self.schemas),
            "tables": len(self.tables) - views,
            "views": views,
            "columns": sum(len(t.columns) for t in self.tables),
        }

    def table(self, schema: str, name: str, database: str | None = None) -> Table:
        for t in self.tables:
            if t.schema == schema and t.name == name and database in (None, t.database):
                return t
        raise KeyError(f"{schema}.{name}")


class IntrospectionFilters(_Model):
    """Which objects to introspect. ``None`` means no restriction.

    Each entry is an exact name or a glob (``*``, ``?``, ``[abc]``), matched without regard
    to case because warehouses disagree on it (Snowflake upper-cases, Postgres lower-cases).
    A ``tables``/``exclude_tables`` entry containing a dot is matched against
    ``schema.table``; otherwise against the bare table name. An empty list is refused: it
    would select nothing, which is almost always a mistake for "no filter".
    """

    databases: list[str] | None = None
    schemas: list[str] | None = None
    tables: list[str] | None = None
    exclude_tables: list[str] | None = None

    @field_validator("databases", "schemas", "tables", "exclude_tables")
    @classmethod
    def _not_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("an empty list selects nothing; omit the filter (None) instead")
        return v

    def match_database(self, name: str) -> bool:
        return self.databases is None or _any_match(self.databases, name)

    def match_schema(self, name: str) -> bool:
        return self.schemas is None or _any_match(self.schemas, name)

    def match_table(self, schema: str, name: str) -> bool:
        if self.tables is not None and not _table_match(self.tables, schema, name):
            return False
        return not (self.exclude_tables and _table_match(self.exclude_tables, schema, name))

    def exact_names(self, field: Literal["databases", "schemas", "tables"]) -> list[str] | None:
        """The list when every entry is a plain name (so it can be pushed into SQL)."""
        values = getattr(self, field)
        if values is None or any(_is_glob(v) or "." in v for v in values):
            return None
        return list(values)


def _is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _any_match(patterns: list[str], name: str) -> bool:
    low = name.lower()
    return any(fnmatchcase(low, p.lower()) for p in patterns)


def _table_match(patterns: list[str], schema: str, name: str) -> bool:
    qualified = f"{schema}.{name}"
    return any(
        _any_match([p], qualified if "." in p else name) for p in patterns
    )
