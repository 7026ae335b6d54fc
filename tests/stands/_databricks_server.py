"""A fake Databricks SQL warehouse: the connector's own Thrift service over DuckDB.

Run by ``tests/stands/databricks.py`` from the stand's venv::

    python _databricks_server.py PORT TOKEN

It serves ``databricks.sql.thrift_api.TCLIService`` (the server half of the protocol the
connector speaks by default) over HTTP, checks the bearer token, translates each statement
from the Databricks dialect to DuckDB with sqlglot and returns column-based row sets. Catalogs
are attached in-memory DuckDB databases (``CREATE CATALOG x``). ``<catalog>.information_schema``
views are answered from DuckDB's own catalog functions with Databricks' column names (0-based
``ordinal_position``, ``full_data_type``, upper-case type names). ``SET STATEMENT_TIMEOUT = n``
is honoured by interrupting DuckDB, and ``CancelOperation`` interrupts a running statement.
"""

from __future__ import annotations

import re
import sys
import threading
import uuid
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb
import sqlglot
from databricks.sql.thrift_api.TCLIService import TCLIService
from databricks.sql.thrift_api.TCLIService import ttypes as T
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport

OK = T.TStatus(statusCode=T.TStatusCode.SUCCESS_STATUS)
_TYPES = {  # DuckDB type prefix -> (Thrift type id, TColumn field, Databricks type name)
    "BOOLEAN": (T.TTypeId.BOOLEAN_TYPE, "boolVal", "BOOLEAN"),
    "TINYINT": (T.TTypeId.TINYINT_TYPE, "byteVal", "TINYINT"),
    "SMALLINT": (T.TTypeId.SMALLINT_TYPE, "i16Val", "SMALLINT"),
    "INTEGER": (T.TTypeId.INT_TYPE, "i32Val", "INT"),
    "BIGINT": (T.TTypeId.BIGINT_TYPE, "i64Val", "BIGINT"),
    "HUGEINT": (T.TTypeId.BIGINT_TYPE, "i64Val", "BIGINT"),
    "FLOAT": (T.TTypeId.FLOAT_TYPE, "doubleVal", "FLOAT"),
    "DOUBLE": (T.TTypeId.DOUBLE_TYPE, "doubleVal", "DOUBLE"),
    "DECIMAL": (T.TTypeId.DECIMAL_TYPE, "stringVal", "DECIMAL"),
    "DATE": (T.TTypeId.DATE_TYPE, "stringVal", "DATE"),
    "TIMESTAMP": (T.TTypeId.TIMESTAMP_TYPE, "stringVal", "TIMESTAMP"),
    "BLOB": (T.TTypeId.BINARY_TYPE, "binaryVal", "BINARY"),
}
_COLUMN_CLASSES = {
    "boolVal": T.TBoolColumn, "byteVal": T.TByteColumn, "i16Val": T.TI16Column,
    "i32Val": T.TI32Column, "i64Val": T.TI64Column, "doubleVal": T.TDoubleColumn,
    "stringVal": T.TStringColumn, "binaryVal": T.TBinaryColumn,
}

# Databricks information_schema views as DuckDB table macros over its catalog functions.
_MACROS = r"""
CREATE MACRO dbx_type(t) AS upper(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
    t, '^VARCHAR$', 'STRING'), '^INTEGER$', 'INT'), '^TIMESTAMP WITH TIME ZONE$', 'TIMESTAMP'),
    '^TIMESTAMP$', 'TIMESTAMP_NTZ'));
CREATE MACRO dbx_is_catalogs(cat) AS TABLE
    SELECT database_name AS catalog_name, comment FROM duckdb_databases()
    WHERE NOT internal AND database_name NOT IN ('memory', 'temp', 'system');
CREATE MACRO dbx_is_schemata(cat) AS TABLE
    SELECT database_name AS catalog_name, schema_name, comment
    FROM duckdb_schemas() WHERE (cat IS NULL OR database_name = cat) AND NOT internal;
CREATE MACRO dbx_is_tables(cat) AS TABLE
    SELECT database_name AS table_catalog, schema_name AS table_schema, table_name,
           'MANAGED' AS table_type, comment
    FROM duckdb_tables() WHERE (cat IS NULL OR database_name = cat) AND NOT internal
    UNION ALL
    SELECT database_name, schema_name, view_name, 'VIEW', comment
    FROM duckdb_views() WHERE (cat IS NULL OR database_name = cat) AND NOT internal;
CREATE MACRO dbx_is_views(cat) AS TABLE
    SELECT database_name AS table_catalog, schema_name AS table_schema,
           view_name AS table_name, sql AS view_definition
    FROM duckdb_views() WHERE (cat IS NULL OR database_name = cat) AND NOT internal;
CREATE MACRO dbx_is_columns(cat) AS TABLE
    SELECT database_name AS table_catalog, schema_name AS table_schema, table_name,
           column_name, column_index - 1 AS ordinal_position,
           CASE WHEN is_nullable THEN 'YES' ELSE 'NO' END AS is_nullable,
           memory.main.dbx_type(regexp_replace(data_type, '\(.*$', '')) AS data_type,
           memory.main.dbx_type(data_type) AS full_data_type,
           character_maximum_length, numeric_precision, numeric_scale,
           column_default, comment
    FROM duckdb_columns() WHERE (cat IS NULL OR database_name = cat) AND NOT internal;
CREATE MACRO dbx_is_table_constraints(cat) AS TABLE
    SELECT database_name AS constraint_catalog, schema_name AS constraint_schema,
           constraint_name, database_name AS table_catalog, schema_name AS table_schema,
           table_name, constraint_type
    FROM duckdb_constraints()
    WHERE (cat IS NULL OR database_name = cat)
      AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY', 'UNIQUE');
CREATE MACRO dbx_is_key_column_usage(cat) AS TABLE
    SELECT database_name AS constraint_catalog, schema_name AS constraint_schema,
           constraint_name, database_name AS table_catalog, schema_name AS table_schema,
           table_name, unnest(constraint_column_names) AS column_name,
           generate_subscripts(constraint_column_names, 1) AS ordinal_position,
           CASE WHEN constraint_type = 'FOREIGN KEY'
                THEN generate_subscripts(constraint_column_names, 1) END
               AS position_in_unique_constraint
    FROM duckdb_constraints()
    WHERE (cat IS NULL OR database_name = cat)
      AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY', 'UNIQUE');
CREATE MACRO dbx_is_referential_constraints(cat) AS TABLE
    SELECT f.database_name AS constraint_catalog, f.schema_name AS constraint_schema,
           f.constraint_name, p.database_name AS unique_constraint_catalog,
           p.schema_name AS unique_constraint_schema, p.constraint_name AS unique_constraint_name
    FROM duckdb_constraints() f
    JOIN duckdb_constraints() p
      ON p.database_name = f.database_name AND p.schema_name = f.schema_name
     AND p.table_name = f.referenced_table AND p.constraint_type IN ('PRIMARY KEY', 'UNIQUE')
     AND p.constraint_column_names = f.referenced_column_names
    WHERE (cat IS NULL OR f.database_name = cat) AND f.constraint_type = 'FOREIGN KEY';
"""
_INFO_SCHEMA = re.compile(
    r"(?:(`[^`]+`|\w+)\.)?information_schema\.(`?)(\w+)\2", re.IGNORECASE
)
_SET = re.compile(r"^\s*SET\s+(\w+)\s*=\s*(\S+?)\s*;?\s*$", re.IGNORECASE)
_CREATE_CATALOG = re.compile(
    r"^\s*CREATE\s+CATALOG\s+(IF\s+NOT\s+EXISTS\s+)?`?(\w+)`?\s*;?\s*$", re.IGNORECASE
)


class Session:
    def __init__(self, db: duckdb.DuckDBPyConnection, catalog: str | None) -> None:
        self.conn = db.cursor()
        self.catalog = catalog
        self.timeout_s: float | None = None
        if catalog:
            self.conn.execute(f'USE "{catalog}"')


class Operation:
    def __init__(self, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows
        self.offset = 0


class Handler:
    """Implements the TCLIService.Iface methods the connector calls."""

    def __init__(self) -> None:
        self.db = duckdb.connect(":memory:")
        self.db.execute(_MACROS)
        self.sessions: dict[bytes, Session] = {}
        self.operations: dict[bytes, Operation] = {}
        self.running: dict[bytes, Session] = {}
        self.lock = threading.Lock()

    # -- sessions -----------------------------------------------------------------
    def OpenSession(self, req: Any) -> Any:  # noqa: N802 (Thrift names)
        catalog = req.initialNamespace.catalogName if req.initialNamespace else None
        handle = _handle()
        try:
            session = Session(self.db, catalog)
        except duckdb.Error as exc:
            return T.TOpenSessionResp(status=_error(str(exc), "42704"))
        with self.lock:
            self.sessions[handle.guid] = session
        return T.TOpenSessionResp(
            status=OK,
            serverProtocolVersion=T.TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V7,
            sessionHandle=T.TSessionHandle(sessionId=handle),
            canUseMultipleCatalogs=True,
            initialNamespace=req.initialNamespace,
            configuration={},
        )

    def CloseSession(self, req: Any) -> Any:  # noqa: N802
        with self.lock:
            session = self.sessions.pop(req.sessionHandle.sessionId.guid, None)
        if session:
            session.conn.close()
        return T.TCloseSessionResp(status=OK)

    # -- statements ---------------------------------------------------------------
    def ExecuteStatement(self, req: Any) -> Any:  # noqa: N802
        session = self.sessions.get(req.sessionHandle.sessionId.guid)
        if session is None:
            return T.TExecuteStatementResp(status=_error("Invalid SessionHandle", "HY000"))
        handle = _handle()
        params = {p.name: _param_value(p) for p in (req.parameters or [])}
        try:
            op = self._run(session, handle.guid, req.statement, params)
        except duckdb.InterruptException:
            msg = (
                f"[STATEMENT_TIMEOUT] Query has been timed out after {session.timeout_s} "
                "seconds (or was cancelled)."
            )
            return self._failed(handle, msg, "57014")
        except (duckdb.Error, sqlglot.errors.SqlglotError) as exc:
            return self._failed(handle, str(exc), _sqlstate(exc))
        self.operations[handle.guid] = op
        return T.TExecuteStatementResp(
            status=OK,
            operationHandle=_op_handle(handle),
            directResults=T.TSparkDirectResults(
                operationStatus=T.TGetOperationStatusResp(
                    status=OK, operationState=T.TOperationState.FINISHED_STATE
                ),
                resultSetMetadata=_metadata(op),
                resultSet=self._fetch(op, req.getDirectResults.maxRows
                                      if req.getDirectResults else 10000),
            ),
        )

    def _failed(self, handle: Any, message: str, sqlstate: str) -> Any:
        return T.TExecuteStatementResp(
            status=OK,
            operationHandle=_op_handle(handle),
            directResults=T.TSparkDirectResults(
                operationStatus=T.TGetOperationStatusResp(
                    status=OK, operationState=T.TOperationState.ERROR_STATE,
                    errorMessage=message, displayMessage=message, sqlState=sqlstate,
                ),
            ),
        )

    def _run(self, session: Session, guid: bytes, sql: str, params: dict[str, Any]) -> Operation:
        if m := _SET.match(sql):
            if m.group(1).upper() == "STATEMENT_TIMEOUT":
                session.timeout_s = float(m.group(2)) or None
            return Operation([("key", "VARCHAR"), ("value", "VARCHAR")],
                             [(m.group(1), m.group(2))])
        if m := _CREATE_CATALOG.match(sql):
            exists = "IF NOT EXISTS " if m.group(1) else ""
            session.conn.execute(f"ATTACH {exists}':memory:' AS \"{m.group(2)}\"")
            return Operation([("result", "VARCHAR")], [])
        sql = _INFO_SCHEMA.sub(lambda m: _info_schema(m, session.catalog), sql)
        statements = sqlglot.transpile(sql, read="databricks", write="duckdb")
        timer = None
        if session.timeout_s:
            timer = threading.Timer(session.timeout_s, session.conn.interrupt)
            timer.start()
        self.running[guid] = session
        try:
            result = None
            for statement in statements:
                result = session.conn.execute(statement, params or None)
            assert result is not None
            if result.description is None:
                return Operation([("result", "VARCHAR")], [])
            rows = result.fetchall()
            return Operation([(d[0], str(d[1])) for d in result.description], rows)
        finally:
            self.running.pop(guid, None)
            if timer:
                timer.cancel()

    def GetOperationStatus(self, req: Any) -> Any:  # noqa: N802
        return T.TGetOperationStatusResp(
            status=OK, operationState=T.TOperationState.FINISHED_STATE
        )

    def GetResultSetMetadata(self, req: Any) -> Any:  # noqa: N802
        return _metadata(self.operations[req.operationHandle.operationId.guid])

    def FetchResults(self, req: Any) -> Any:  # noqa: N802
        op = self.operations[req.operationHandle.operationId.guid]
        resp = self._fetch(op, req.maxRows)
        if req.includeResultSetMetadata:
            resp.resultSetMetadata = _metadata(op)
        return resp

    def _fetch(self, op: Operation, max_rows: int) -> Any:
        chunk = op.rows[op.offset:op.offset + max_rows]
        op.offset += len(chunk)
        return T.TFetchResultsResp(
            status=OK,
            hasMoreRows=op.offset < len(op.rows),
            results=T.TRowSet(startRowOffset=op.offset - len(chunk), rows=[],
                              columns=_columns(op.columns, chunk)),
        )

    def CancelOperation(self, req: Any) -> Any:  # noqa: N802
        session = self.running.get(req.operationHandle.operationId.guid)
        if session:
            session.conn.interrupt()
        return T.TCancelOperationResp(status=OK)

    def CloseOperation(self, req: Any) -> Any:  # noqa: N802
        self.operations.pop(req.operationHandle.operationId.guid, None)
        return T.TCloseOperationResp(status=OK)

    def GetInfo(self, req: Any) -> Any:  # noqa: N802
        return T.TGetInfoResp(status=OK, infoValue=T.TGetInfoValue(stringValue="fake"))


def _info_schema(m: re.Match[str], current: str | None) -> str:
    catalog = (m.group(1) or "").strip("`") or current
    arg = "NULL" if catalog is None or catalog.lower() == "system" else f"'{catalog}'"
    return f"memory.main.dbx_is_{m.group(3).lower()}({arg})"


def _handle() -> Any:
    return T.THandleIdentifier(guid=uuid.uuid4().bytes, secret=uuid.uuid4().bytes)


def _op_handle(handle: Any) -> Any:
    return T.TOperationHandle(
        operationId=handle, operationType=T.TOperationType.EXECUTE_STATEMENT,
        hasResultSet=True,
    )


def _error(message: str, sqlstate: str) -> Any:
    return T.TStatus(statusCode=T.TStatusCode.ERROR_STATUS, errorMessage=message,
                     sqlState=sqlstate)


def _sqlstate(exc: Exception) -> str:
    if isinstance(exc, duckdb.CatalogException):
        return "42P01"
    if isinstance(exc, duckdb.ParserException | sqlglot.errors.SqlglotError):
        return "42601"
    return "XX000"


def _type(duck: str) -> tuple[int, str, str]:
    for prefix, entry in _TYPES.items():
        if duck.upper().startswith(prefix):
            return entry
    return (T.TTypeId.STRING_TYPE, "stringVal", "STRING")


def _metadata(op: Operation) -> Any:
    cols = []
    for pos, (name, duck) in enumerate(op.columns):
        type_id = _type(duck)[0]
        qualifiers = None
        if type_id == T.TTypeId.DECIMAL_TYPE:
            p, s = (int(x) for x in re.findall(r"\d+", duck)[:2])
            qualifiers = T.TTypeQualifiers(qualifiers={
                "precision": T.TTypeQualifierValue(i32Value=p),
                "scale": T.TTypeQualifierValue(i32Value=s),
            })
        entry = T.TTypeEntry(primitiveEntry=T.TPrimitiveTypeEntry(
            type=type_id, typeQualifiers=qualifiers))
        cols.append(T.TColumnDesc(columnName=name, typeDesc=T.TTypeDesc(types=[entry]),
                                  position=pos + 1))
    return T.TGetResultSetMetadataResp(
        status=OK, schema=T.TTableSchema(columns=cols),
        resultFormat=T.TSparkRowSetType.COLUMN_BASED_SET, lz4Compressed=False,
    )


def _columns(columns: list[tuple[str, str]], rows: list[tuple[Any, ...]]) -> list[Any]:
    out = []
    for i, (_, duck) in enumerate(columns):
        _, field, _ = _type(duck)
        values = [r[i] for r in rows]
        nulls = bytearray((len(values) + 7) // 8)
        for j, v in enumerate(values):
            if v is None:
                nulls[j // 8] |= 1 << (j % 8)
        filled = [_cell(v, field) for v in values]
        column = _COLUMN_CLASSES[field](values=filled, nulls=bytes(nulls))
        out.append(T.TColumn(**{field: column}))
    return out


def _cell(value: Any, field: str) -> Any:
    if field == "stringVal":
        if value is None:
            return ""
        if isinstance(value, Decimal):
            return format(value, "f")
        return value.isoformat(sep=" ") if hasattr(value, "hour") else str(value)
    if value is None:
        return {"boolVal": False, "binaryVal": b"", "doubleVal": 0.0}.get(field, 0)
    return value


def _param_value(p: Any) -> Any:
    raw = p.value.stringValue if p.value else None
    if raw is None:
        return None
    kind = (p.type or "STRING").upper()
    if kind in ("INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT"):
        return int(raw)
    if kind in ("FLOAT", "DOUBLE"):
        return float(raw)
    if kind == "DECIMAL":
        return Decimal(raw)
    if kind == "BOOLEAN":
        return raw.lower() == "true"
    return raw


def serve(port: int, token: str) -> None:
    processor = TCLIService.Processor(Handler())

    class HTTPHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            itrans = TTransport.TMemoryBuffer(body)
            otrans = TTransport.TMemoryBuffer()
            processor.process(TBinaryProtocol.TBinaryProtocol(itrans),
                              TBinaryProtocol.TBinaryProtocol(otrans))
            out = otrans.getvalue()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-thrift")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), HTTPHandler)
    server.daemon_threads = True
    print(f"fake databricks listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2])
