"""information_schema queries for MySQL/MariaDB and the assembly of their rows.

Each query takes the selected schema names as one parameter (PyMySQL expands a list into
``('a', 'b')``), so the statement count does not grow with the number of tables.

Columns are the bulk (20 rows per table is common). On MariaDB 10.5+ each share of them
(see ``_SHARE``) is read as one JSON array (``COLUMNS_FLAT_JSON_SQL``; one array per table,
``COLUMNS_JSON_SQL``, if the server cannot build it) and validated by pydantic straight from
the JSON text: PyMySQL decodes each field of each row in Python (~1 us a field, 12 fields x
20,000 rows), then the rows had to become dicts and be validated again. For 1,000 x 20 that
is ~25 ms of client CPU instead of ~500 ms. Tables and keys come the same way, as one JSON
document each. ``COLUMNS_SQL``, ``TABLES_SQL`` and ``KEYS_SQL`` (one row per object) are
the path for MySQL, older MariaDB, and a document the server could not build.
"""

from __future__ import annotations

import gc
import json
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import TypeAdapter, ValidationError

from connectors.catalog import Column, ForeignKey, Table, TableKind

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

# The columns are read in shares, each on its own connection, so the server builds them on
# more than one core and the client parses one share while the server still builds the
# next. A share is the tables whose name hashes into it: MariaDB evaluates a condition on
# TABLE_SCHEMA/TABLE_NAME alone before it opens a table's definition, so a share costs the
# server only its own tables (a half: 9 ms instead of 17 for 1,000 x 20 columns counted).
# Parameters: the schemas, the modulus, the remainders of this share.
_SHARE = "MOD(CRC32(CONCAT(TABLE_SCHEMA, '.', TABLE_NAME)), %s) IN %s"
ColumnShare = tuple[int, list[int]]

COLUMNS_SQL = f"""
SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_DEFAULT,
       IS_NULLABLE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION,
       NUMERIC_SCALE, COLUMN_COMMENT, DATA_TYPE
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN %s AND {_SHARE}
ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION
"""

_TEXT_TYPES_SQL = ("'char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'binary', "
                   "'varbinary', 'enum', 'set'")
# The same values as COLUMNS_SQL + columns_from_rows(), already as Column's JSON: the
# default NULL (as text, see _default()) and the empty comment left out (None), as are
# max_length/precision/scale where they do not apply and nullable when true. Written with
# CONCAT and JSON_QUOTE rather than JSON_OBJECT: a third of the text (no null members, no
# spaces), ~30 % less server time and ~30 % less parsing. Every piece is non-NULL (CONCAT
# of a NULL is NULL, and GROUP_CONCAT skips NULLs silently), and the row carries its
# column count, which the parsing checks. The cheap NULL tests come first (AND
# stops at the first false: ~4 of ~50 ms server time for 1,000 x 20 columns); a decimal
# always has both precision and scale, and were one NULL the count would catch it. The
# default and the comment are compared as bytes and by length, as Python compares: a text
# comparison would ignore case and trailing spaces (a comment ' ' would equal '').
_COLUMN_JSON = f"""CONCAT(
         '{{"name":', JSON_QUOTE(COLUMN_NAME), ',"data_type":', JSON_QUOTE(COLUMN_TYPE),
         IF(IS_NULLABLE = 'YES', '', ',"nullable":false'),
         IF(COLUMN_DEFAULT IS NULL
            OR (LENGTH(COLUMN_DEFAULT) = 4 AND CAST(COLUMN_DEFAULT AS BINARY) = 'NULL'),
            '', CONCAT(',"default":', JSON_QUOTE(COLUMN_DEFAULT))),
         IF(LENGTH(COLUMN_COMMENT) = 0 OR COLUMN_COMMENT IS NULL,
            '', CONCAT(',"comment":', JSON_QUOTE(COLUMN_COMMENT))),
         ',"position":', ORDINAL_POSITION,
         IF(CHARACTER_MAXIMUM_LENGTH IS NOT NULL AND DATA_TYPE IN ({_TEXT_TYPES_SQL}),
            CONCAT(',"max_length":', CHARACTER_MAXIMUM_LENGTH), ''),
         IF(NUMERIC_SCALE IS NOT NULL AND DATA_TYPE IN ('decimal', 'numeric'),
            CONCAT(',"precision":', NUMERIC_PRECISION, ',"scale":', NUMERIC_SCALE), ''),
         '}}')"""

# A share's columns as one document, not one per table: grouping by table made the server
# sort the share's rows (a filesort of the wide information_schema rows, read back by row
# pointer) and keep an ordered tree per table, ~20 % of the statement (49 -> 39 ms for
# 1,000 x 20 columns). The rows come in the order information_schema fills them: table by
# table, each table's columns in ordinal order. So a table starts at its column of
# position 1, and the second document names the tables in that order: built from the same
# rows in the same pass, GROUP_CONCAT skipping the NULL of every other column.
# columns_from_flat_json() checks that order (positions 1, 2, ... within each table) and
# the counts, and returns None otherwise: then COLUMNS_JSON_SQL is read. GROUP_CONCAT is
# bounded by group_concat_max_len (1 MiB by default): lifted for this one statement. A
# document over max_allowed_packet (16 MiB by default: some 250,000 columns a share) comes
# back as NULL, and the share is read again by table.
COLUMNS_FLAT_JSON_SQL = f"""
SET STATEMENT group_concat_max_len = 4294967295 FOR
SELECT COUNT(*),
       CONCAT('[', GROUP_CONCAT(IF(ORDINAL_POSITION = 1, CONCAT(
         '[', JSON_QUOTE(TABLE_SCHEMA), ',', JSON_QUOTE(TABLE_NAME), ']'), NULL)
         SEPARATOR ','), ']'),
       CONCAT('[', GROUP_CONCAT({_COLUMN_JSON} SEPARATOR ','), ']')
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN %s AND {_SHARE}
"""

# The same, one document per table (the row carries the table's column count): for a share
# whose one document the server could not build. A table whose JSON would exceed
# max_allowed_packet comes back as NULL.
COLUMNS_JSON_SQL = f"""
SET STATEMENT group_concat_max_len = 4294967295 FOR
SELECT TABLE_SCHEMA, TABLE_NAME, COUNT(*), CONCAT('[', GROUP_CONCAT(
         {_COLUMN_JSON} ORDER BY ORDINAL_POSITION SEPARATOR ','), ']')
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA IN %s AND {_SHARE}
GROUP BY TABLE_SCHEMA, TABLE_NAME
ORDER BY NULL
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

# MariaDB 10.5+: TABLES and KEYS as one JSON document each (same columns, same order), so
# the client parses one string instead of decoding 1,000s of rows field by field in
# pure-Python PyMySQL (~15 ms for 1,000 tables, time the columns' thread waited for the
# GIL). The count tells an empty result (NULL aggregate) from one the server could not
# build (over max_allowed_packet: NULL too); see json_rows().
_AS_JSON = "SET STATEMENT group_concat_max_len = 4294967295 FOR SELECT COUNT(*), JSON_ARRAYAGG("

TABLES_JSON_SQL = _AS_JSON + """JSON_ARRAY(
         TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH,
         TABLE_COMMENT) ORDER BY TABLE_SCHEMA, TABLE_NAME)
FROM information_schema.TABLES
WHERE TABLE_SCHEMA IN %s AND TABLE_TYPE <> 'SEQUENCE'
"""

KEYS_JSON_SQL = _AS_JSON + """JSON_ARRAY(
         TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME,
         REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME)
         ORDER BY TABLE_SCHEMA, TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION)
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA IN %s
  AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL)
"""

_KINDS: dict[str, TableKind] = {
    "BASE TABLE": "table", "SYSTEM VERSIONED": "table", "VIEW": "view",
    "SYSTEM VIEW": "view",
}
_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "binary",
               "varbinary", "enum", "set"}
_DECIMAL_TYPES = {"decimal", "numeric"}


_COLUMN_LIST = TypeAdapter(list[Column])
TableKey = tuple[str, str]

_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic cyclic GC while building a catalog's ~20 objects per column.

    Every object survives, so the collector's passes find nothing, yet they are ~40 % of the
    client CPU of a 1,000 x 20 introspection: each build promotes ~60,000 objects and
    triggers a full collection of the whole heap (~100 ms in a worker that imported
    SQLAlchemy). Paused, the objects are freed by reference counting when the catalog is
    dropped. Process-wide, so kept to the CPU-bound building (no I/O inside); nested and
    concurrent pauses re-enable once, and only if GC was enabled before the first."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def columns_from_rows(
    columns: list[tuple[Any, ...]], *, mariadb: bool
) -> dict[TableKey, list[Column]]:
    """COLUMNS_SQL rows -> Columns per (schema, table)."""
    # Plain dicts first, each table's validated in one pass: ~3x faster than Column() each.
    cols: dict[TableKey, list[dict[str, Any]]] = defaultdict(list)
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
    with gc_paused():
        return {key: _COLUMN_LIST.validate_python(dicts) for key, dicts in cols.items()}


def columns_from_json(rows: list[tuple[Any, ...]]) -> dict[TableKey, list[Column]] | None:
    """COLUMNS_JSON_SQL rows (MariaDB) -> Columns per (schema, table); None when a table's
    JSON is missing, unreadable or short of columns (then read COLUMNS_SQL instead)."""
    out: dict[TableKey, list[Column]] = {}
    with gc_paused():
        for schema, table, count, doc in rows:
            if doc is None:
                return None
            try:
                columns = _COLUMN_LIST.validate_json(doc)
            except ValidationError:
                return None
            if len(columns) != count:
                return None
            out[(schema, table)] = columns
    return out


def columns_from_flat_json(
    rows: list[tuple[Any, ...]]
) -> dict[TableKey, list[Column]] | None:
    """The one row of COLUMNS_FLAT_JSON_SQL -> Columns per (schema, table); None when a
    document is missing or unreadable, a column is missing, or the columns are not table
    by table in ordinal order (then read COLUMNS_JSON_SQL instead)."""
    count, names_doc, columns_doc = rows[0]
    if not count:
        return {}
    if names_doc is None or columns_doc is None:
        return None
    try:
        names = json.loads(names_doc)
        with gc_paused():
            columns = _COLUMN_LIST.validate_json(columns_doc)
    except (ValueError, ValidationError):  # pydantic's ValidationError is a ValueError
        return None
    if len(columns) != count or not isinstance(names, list):
        return None
    # Tables start at position 1; each must run 1, 2, ... n (slices and list compares: a
    # loop per table, not per column).
    positions = [column.position for column in columns]
    starts = [i for i, position in enumerate(positions) if position == 1]
    if len(starts) != len(names) or (starts and starts[0] != 0):
        return None
    out: dict[TableKey, list[Column]] = {}
    for name, start, end in zip(names, starts, [*starts[1:], len(columns)], strict=True):
        if not (isinstance(name, list) and len(name) == 2) or tuple(name) in out:
            return None
        if positions[start:end] != list(range(1, end - start + 1)):
            return None
        out[(name[0], name[1])] = columns[start:end]
    return out


def json_rows(rows: list[tuple[Any, ...]]) -> list[Any] | None:
    """The one (count, JSON array) row of TABLES_JSON_SQL/KEYS_JSON_SQL -> its rows as
    lists; None when the server could not build the document (then run the row query)."""
    count, doc = rows[0]
    if not count:
        return []
    if doc is None:
        return None
    try:
        out = json.loads(doc)
    except ValueError:
        return None
    # Rows must be arrays: a server that returned each as a quoted string (MariaDB has had
    # JSON_ARRAYAGG bugs of that kind, e.g. MDEV-30646) gets the row query instead.
    if not isinstance(out, list) or len(out) != count:
        return None
    return out if all(isinstance(row, list) for row in out) else None


def build_catalog_tables(
    tables: Sequence[Sequence[Any]],
    keys: Sequence[Sequence[Any]],
    views: Sequence[Sequence[Any]],
) -> list[Table]:
    """Tables without their columns (see attach_columns): built while the columns are still
    being read on the other connection."""
    with gc_paused():
        return _build_tables(tables, keys, views)


def attach_columns(tables: list[Table], columns: Mapping[TableKey, list[Column]]) -> None:
    for table in tables:
        table.columns = columns.get((table.schema, table.name), [])


def _build_tables(
    tables: Sequence[Sequence[Any]],
    keys: Sequence[Sequence[Any]],
    views: Sequence[Sequence[Any]],
) -> list[Table]:
    view_sql = {(schema, name): text for schema, name, text in views}
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
