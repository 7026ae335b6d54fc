"""Plain-text catalog summary for the CLI (``datasources show`` / ``introspect``)."""

from __future__ import annotations

from connectors import Catalog, Table
from runtime.datasources import CatalogInfo, DataSourceInfo


def render_catalog(
    source: DataSourceInfo, info: CatalogInfo, catalog: Catalog, max_tables: int = 50
) -> str:
    c = info.counts
    lines = [
        f"data source  {source.name} ({source.type}, {source.id})",
        f"catalog      {info.snapshot_id}, introspected {info.introspected_at:%Y-%m-%d %H:%M:%S} "
        "UTC" + (f" by {info.run_id}" if info.run_id else ""),
        f"contents     {c.get('databases', 0)} databases, {c.get('schemas', 0)} schemas, "
        f"{c.get('tables', 0)} tables, {c.get('views', 0)} views, {c.get('columns', 0)} columns",
        "",
    ]
    for table in catalog.tables[:max_tables]:
        lines += _table(table)
    if len(catalog.tables) > max_tables:
        lines.append(f"… and {len(catalog.tables) - max_tables} more tables")
    return "\n".join(lines).rstrip()


def _table(t: Table) -> list[str]:
    rows = f"~{t.row_count:,} rows" if t.row_count is not None else "rows unknown"
    head = f"{t.database}.{t.schema}.{t.name}  [{t.kind}]  {len(t.columns)} columns, {rows}"
    out = [head]
    if t.comment:
        out.append(f"    {t.comment}")
    if t.primary_key:
        out.append(f"    primary key ({', '.join(t.primary_key)})")
    for fk in t.foreign_keys:
        out.append(
            f"    ({', '.join(fk.columns)}) → {fk.referenced_schema}.{fk.referenced_table}"
            f"({', '.join(fk.referenced_columns)})"
        )
    profiled = [col for col in t.columns if col.profile and col.profile.sample_values]
    for col in profiled[:3]:
        assert col.profile is not None
        values = ", ".join(str(v) for v in col.profile.sample_values[:5])
        out.append(f"    {col.name}: {col.data_type}  e.g. {values}")
    out.append("")
    return out
