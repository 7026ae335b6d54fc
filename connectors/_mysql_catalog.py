"""information_schema queries for MySQL/MariaDB and the assembly of their rows.

Each query takes the selected schema names as one parameter (PyMySQL expands a list into
``('a', 'b')``), so the statement count does not grow with the number of tables.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from connectors.catalog import ForeignKey, Table, TableKind

SCHEMAS_SQL = """
SELECT SCHEMA_NAME FROM information_schema.SCHEMATA
WHERE SCHEMA_NAME NOT IN ('information_schema', 'performance_schema', 'mysql', 'sys')
ORDER BY SCHEMA_NAME
"""

TABLES_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS,
       DATA_LENGTH + INDEX_LENGTH, TABLE_COMMENT
FROM information_schema.TABLES
WHERE TABLE_SCHEMA IN %s AND TABLE_TYPE <> 'SEQUENCE'
ORDER BY TABLE_SCHEMA, TABLE_NAME
"""

VIEWS_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA IN %s
"""

COLUMNS_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT,
       IS_NULLABLE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION,
       NUMERIC_SCALE, COLUMN_COMMENT, DATA_TYPE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN %s
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION
"""

# No join with TABLE_CONSTRAINTS: joining two information_schema tables makes MariaDB
# rescan one per row of the other (0.4 s for 1,000 tables instead of 0.015 s). The primary
# key is always named PRIMARY, and only foreign keys reference a table.
KEYS_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME,
       REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA IN %s
  AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL)
ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION
"""

_KINDS: dict[str, TableKind] = {
    "BASE TABLE": "table", "SYSTEM VERSIONED": "table", "VIEW": "view",
    "SYSTEM VIEW": "view",
}
_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "binary",
               "varbinary", "enum", "set"}
_DECIMAL_TYPES = {"decimal", "numeric"}


def build_catalog_tables(
    tables: list[tuple[Any, ...]],
    columns: list[tuple[Any, ...]],
    keys: list[tuple[Any, ...]],
    views: list[tuple[Any, ...]],
    *,
    mariadb: bool,
) -> list[Table]:
    view_sql = {(schema, name): text for schema, name, text in views}
    # Plain dicts: Table() validates them in one pass, ~3x faster than Column() each.
    cols: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for (schema, table, name, pos, default, nullable, col_type, max_len, prec, scale,
         comment, data_type) in columns:
        base = str(data_type).lower()
        cols[(schema, table)].append(
            dict(
                name=name, data_type=col_type, nullable=nullable == "YES",
                default=_default(default, mariadb=mariadb), comment=comment or None,
                position=int(pos),
                max_length=int(max_len) if max_len is not None and base in _TEXT_TYPES
                else None,
                precision=int(prec) if prec is not None and base in _DECIMAL_TYPES else None,
                scale=int(scale) if scale is not None and base in _DECIMAL_TYPES else None,
            )
        )
    pks: dict[tuple[str, str], list[str]] = defaultdict(list)
    fks: dict[tuple[str, str], dict[str, ForeignKey]] = defaultdict(dict)
    for schema, table, cname, col, ref_schema, ref_table, ref_col in keys:
        if ref_table is None:  # CONSTRAINT_NAME = 'PRIMARY'

            pks[(schema, table)].append(col)
            continue
        fk = fks[(schema, table)].setdefault(
            cname,
            ForeignKey(name=cname, columns=[], referenced_database=ref_schema,
                       referenced_schema=ref_schema, referenced_table=ref_table,
                       referenced_columns=[]),
        )
        fk.columns.append(col)
        fk.referenced_columns.append(ref_col)
    return [
        Table(
            database=schema, schema=schema, name=name, kind=_KINDS.get(ttype, "table"),
            row_count=int(rows) if rows is not None and ttype != "VIEW" else None,
            size_bytes=int(size) if size is not None and ttype != "VIEW" else None,
            comment=_table_comment(comment, ttype),
            columns=cols.get((schema, name), []),  # type: ignore[arg-type]  # validated here
            primary_key=pks.get((schema, name), []),
            foreign_keys=list(fks.get((schema, name), {}).values()),
            view_definition=view_sql.get((schema, name)) or None,
        )
        for schema, name, ttype, rows, size, comment in tables
    ]


def _default(value: str | None, *, mariadb: bool) -> str | None:
    # MariaDB (10.2.7+) reports defaults as SQL expressions, so a column without a default
    # shows the literal text NULL; MySQL reports no default as SQL NULL.
    if value is None or (mariadb and value == "NULL"):
        return None
    return str(value)


def _table_comment(comment: str | None, table_type: str) -> str | None:
    # MySQL fills TABLE_COMMENT of every view with the word VIEW.
    if not comment or (table_type == "VIEW" and comment == "VIEW"):
        return None
    return str(comment)
