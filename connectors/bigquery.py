"""BigQuery through google-cloud-bigquery.

Timeouts: each query job carries ``job_timeout_ms`` (BigQuery cancels the job itself), the
client waits at most ``timeout_s`` for the result and cancels the job if it gives up, and API
calls retry only until ``connect_timeout_s`` (the library's default retries for minutes).
Only ``max_rows + 1`` rows are read from the result (``max_results``).

Introspection: database = project, schema = dataset. One region-level statement lists the
datasets with their descriptions; then three statements per dataset (tables with options,
storage and view text; columns with descriptions; key constraints). Identifiers are
backtick-quoted; filter values are query parameters.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import bigquery

from connectors.base import Connector, Params, QueryColumn, RawResult, quote_identifier
from connectors.catalog import (
    Catalog,
    Column,
    Database,
    ForeignKey,
    IntrospectionFilters,
    Schema,
    Table,
    TableKind,
)
from connectors.credentials import BigQueryCredentials
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DatabaseNotFoundError,
    HostUnreachableError,
    PermissionDeniedError,
    QueryError,
    QueryTimeoutError,
)

__all__ = [
    "BigQueryConnector", "dataset_statements", "schemas_statement", "translate_bigquery_error",
]

INTROSPECT_TIMEOUT_S = 300.0
_KINDS: dict[str, TableKind] = {
    "BASE TABLE": "table", "CLONE": "table", "SNAPSHOT": "table", "VIEW": "view",
    "MATERIALIZED VIEW": "materialized_view", "EXTERNAL": "external",
}
_MODIFIERS = re.compile(r"^(\w+)\((\d+)(?:\s*,\s*(\d+))?\)$")


def _bq(*parts: str) -> str:
    return ".".join(quote_identifier(p, "`") for p in parts)


class BigQueryConnector(Connector):
    warehouse_type = "bigquery"
    paramstyle = "named"  # @name; a list binds positional ``?``

    def __init__(self, credentials: BigQueryCredentials) -> None:
        super().__init__(credentials)
        self.credentials: BigQueryCredentials = credentials
        self._client: bigquery.Client | None = None
        self._retry = bigquery.DEFAULT_RETRY.with_timeout(credentials.connect_timeout_s)

    # -- connection -------------------------------------------------------------------

    def _connection(self) -> bigquery.Client:
        if self._client is None:
            self._client = make_client(self.credentials)
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()

    # -- query --------------------------------------------------------------------------

    def _execute(self, sql: str, params: Params, fetch: int, timeout_s: float) -> RawResult:
        client = self._connection()
        config = bigquery.QueryJobConfig(
            job_timeout_ms=int(timeout_s * 1000), use_legacy_sql=False,
            query_parameters=query_parameters(params),
        )
        job = client.query(sql, job_config=config, location=self.credentials.location,
                           retry=self._retry, job_retry=None, timeout=timeout_s)
        try:
            result = job.result(max_results=fetch, timeout=timeout_s, retry=self._retry,
                                job_retry=None)
        except concurrent.futures.TimeoutError:
            job.cancel(retry=self._retry, timeout=self.credentials.connect_timeout_s)
            raise
        rows = [tuple(r.values()) for r in result] if fetch > 0 else []
        columns = [QueryColumn(name=f.name, type=_field_type(f)) for f in result.schema or []]
        return RawResult(columns=columns, rows=rows[:fetch])

    def _translate_error(self, exc: Exception) -> ConnectorError | None:
        return translate_bigquery_error(exc)

    def _sample_sql(self, table: Table, limit: int) -> str:
        return f"SELECT * FROM {_bq(table.database, table.schema, table.name)} LIMIT {int(limit)}"

    # -- introspection ------------------------------------------------------------------

    def _introspect(self, filters: IntrospectionFilters) -> Catalog:
        catalog = Catalog(warehouse_type=self.warehouse_type)
        projects = filters.exact_names("databases") or [self.credentials.project_id]
        for project in projects:
            if not filters.match_database(project):
                continue
            catalog.databases.append(Database(name=project))
            sql, params = schemas_statement(project, self.credentials.location,
                                            filters.exact_names("schemas"))
            for r in self._rows(sql, params):
                if not filters.match_schema(r["schema_name"]):
                    continue
                catalog.schemas.append(Schema(database=project, name=r["schema_name"],
                                              comment=_option(r["description"])))
                catalog.tables += self._dataset_tables(project, r["schema_name"])
        return catalog

    def _dataset_tables(self, project: str, dataset: str) -> list[Table]:
        stmts = dataset_statements(project, dataset)
        tables: dict[str, Table] = {}
        for r in self._rows(stmts["tables"]):
            kind = _KINDS.get(r["table_type"], "table")
            stored = kind in ("table", "materialized_view")
            tables[r["table_name"]] = Table(
                database=project, schema=dataset, name=r["table_name"], kind=kind,
                row_count=r["row_count"] if stored else None,
                size_bytes=r["size_bytes"] if stored else None,
                comment=_option(r["description"]), view_definition=r["view_definition"],
            )
        for r in self._rows(stmts["columns"]):
            if (table := tables.get(r["table_name"])) is not None:
                table.columns.append(_column(r))
        _apply_keys(self._rows(stmts["keys"]), tables)
        return list(tables.values())

    def _rows(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        raw = self._execute(sql, params, 10**9, INTROSPECT_TIMEOUT_S)
        names = [c.name for c in raw.columns]
        return [dict(zip(names, row, strict=True)) for row in raw.rows]


def make_client(c: BigQueryCredentials) -> bigquery.Client:
    from google.api_core.client_options import ClientOptions

    credentials: Any = None
    if c.service_account_json is not None:
        from google.oauth2 import service_account

        info = json.loads(c.service_account_json.get_secret_value())
        credentials = service_account.Credentials.from_service_account_info(info)
    elif c.api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()  # an emulator checks no token
    options = ClientOptions(api_endpoint=c.api_endpoint) if c.api_endpoint else None
    return bigquery.Client(project=c.project_id, credentials=credentials,
                           location=c.location, client_options=options)


def query_parameters(params: Params) -> list[Any]:
    if not params:
        return []
    if isinstance(params, dict):
        return [_scalar(name, value) for name, value in params.items()]
    return [_scalar(None, value) for value in params]


def _scalar(name: str | None, value: Any) -> Any:
    if isinstance(value, list | tuple):
        kind = _param_type(value[0]) if value else "STRING"
        return bigquery.ArrayQueryParameter(name, kind, list(value))
    return bigquery.ScalarQueryParameter(name, _param_type(value), value)


def _param_type(value: Any) -> str:
    # bool before int: True is an int in Python.
    for py, bq in ((bool, "BOOL"), (int, "INT64"), (float, "FLOAT64"), (Decimal, "NUMERIC"),
                   (dt.datetime, "TIMESTAMP" if getattr(value, "tzinfo", None) else "DATETIME"),
                   (dt.date, "DATE"), (dt.time, "TIME"), (bytes, "BYTES")):
        if isinstance(value, py):
            return bq
    return "STRING"


def schemas_statement(
    project: str, location: str, schemas: list[str] | None = None
) -> tuple[str, dict[str, Any]]:
    region = _bq(project, f"region-{location.lower()}")
    sql = (
        f"SELECT s.schema_name, o.option_value AS description "
        f"FROM {region}.INFORMATION_SCHEMA.SCHEMATA AS s "
        f"LEFT JOIN {region}.INFORMATION_SCHEMA.SCHEMATA_OPTIONS AS o "
        f"ON o.schema_name = s.schema_name AND o.option_name = 'description'"
    )
    params: dict[str, Any] = {}
    if schemas:
        sql += " WHERE s.schema_name IN UNNEST(@schemas)"
        params["schemas"] = list(schemas)
    return sql + " ORDER BY s.schema_name", params


def dataset_statements(project: str, dataset: str) -> dict[str, str]:
    """The three catalog statements for one dataset."""
    info = f"{_bq(project, dataset)}.INFORMATION_SCHEMA"
    return {
        "tables": (
            f"SELECT t.table_name, t.table_type, o.option_value AS description, "
            f"s.row_count, s.size_bytes, v.view_definition "
            f"FROM {info}.TABLES AS t "
            f"LEFT JOIN {info}.TABLE_OPTIONS AS o "
            f"ON o.table_name = t.table_name AND o.option_name = 'description' "
            f"LEFT JOIN {_bq(project, dataset, '__TABLES__')} AS s ON s.table_id = t.table_name "
            f"LEFT JOIN {info}.VIEWS AS v ON v.table_name = t.table_name "
            f"ORDER BY t.table_name"
        ),
        "columns": (
            f"SELECT c.table_name, c.column_name, c.ordinal_position, c.is_nullable, "
            f"c.data_type, f.description "
            f"FROM {info}.COLUMNS AS c "
            f"LEFT JOIN {info}.COLUMN_FIELD_PATHS AS f ON f.table_name = c.table_name "
            f"AND f.column_name = c.column_name AND f.field_path = c.column_name "
            f"ORDER BY c.table_name, c.ordinal_position"
        ),
        "keys": (
            f"SELECT tc.table_name, tc.constraint_name, tc.constraint_type, k.column_name, "
            f"k.ordinal_position, k.position_in_unique_constraint, "
            f"u.table_catalog AS ref_project, u.table_schema AS ref_dataset, "
            f"u.table_name AS ref_table, u.column_name AS ref_column "
            f"FROM {info}.TABLE_CONSTRAINTS AS tc "
            f"JOIN {info}.KEY_COLUMN_USAGE AS k ON k.constraint_name = tc.constraint_name "
            f"LEFT JOIN {info}.CONSTRAINT_COLUMN_USAGE AS u "
            f"ON u.constraint_name = tc.constraint_name AND tc.constraint_type = 'FOREIGN KEY' "
            f"ORDER BY tc.table_name, tc.constraint_name, k.ordinal_position"
        ),
    }


def _option(value: str | None) -> str | None:
    """OPTIONS values come back as SQL literals (``"sales data"``)."""
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def _column(r: dict[str, Any]) -> Column:
    data_type = str(r["data_type"])
    length = precision = scale = None
    if m := _MODIFIERS.match(data_type.replace(" ", "")):
        base, first, second = m.group(1).upper(), int(m.group(2)), m.group(3)
        if base in ("STRING", "BYTES"):
            length = first
        else:
            precision, scale = first, int(second) if second else 0
    return Column(
        name=r["column_name"], data_type=data_type, nullable=r["is_nullable"] == "YES",
        comment=r["description"] or None, position=int(r["ordinal_position"]),
        max_length=length, precision=precision, scale=scale,
    )


def _apply_keys(rows: list[dict[str, Any]], tables: dict[str, Table]) -> None:
    """Primary keys first; then foreign keys, whose referenced columns follow the
    referenced key's order (``position_in_unique_constraint``)."""
    fks: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        table = tables.get(r["table_name"])
        if table is None:
            continue
        if r["constraint_type"] == "PRIMARY KEY":
            if r["column_name"] not in table.primary_key:
                table.primary_key.append(r["column_name"])
        elif r["constraint_type"] == "FOREIGN KEY":
            fk = fks.setdefault((r["table_name"], r["constraint_name"]), {
                "table": table, "name": r["constraint_name"], "cols": {}, "refs": [],
                "ref": (r["ref_project"], r["ref_dataset"], r["ref_table"]),
            })
            fk["cols"][r["column_name"]] = r["position_in_unique_constraint"]
            if r["ref_column"] and r["ref_column"] not in fk["refs"]:
                fk["refs"].append(r["ref_column"])
    for fk in fks.values():
        project, dataset, ref_table = fk["ref"]
        referenced = tables.get(ref_table) if dataset == fk["table"].schema else None
        refs = fk["refs"]
        if referenced is not None and referenced.primary_key:
            refs = [referenced.primary_key[(p or i + 1) - 1]
                    for i, p in enumerate(fk["cols"].values())]
        fk["table"].foreign_keys.append(ForeignKey(
            name=fk["name"], columns=list(fk["cols"]), referenced_database=project,
            referenced_schema=dataset, referenced_table=ref_table, referenced_columns=refs,
        ))


def _field_type(field: Any) -> str:
    kind = str(field.field_type)
    return f"ARRAY<{kind}>" if field.mode == "REPEATED" else kind


def translate_bigquery_error(exc: Exception) -> ConnectorError | None:
    """Map google-cloud / google-auth / transport exceptions to our tree."""
    import google.auth.exceptions as auth_exc
    import requests

    msg = str(exc)
    if isinstance(exc, auth_exc.DefaultCredentialsError | auth_exc.RefreshError
                  | gexc.Unauthenticated):
        return AuthenticationError(f"BigQuery rejected the credentials: {msg}")
    if isinstance(exc, concurrent.futures.TimeoutError | gexc.DeadlineExceeded) or (
        isinstance(exc, gexc.GoogleAPICallError) and "timed out" in msg.lower()
        and "job" in msg.lower()
    ):
        return QueryTimeoutError(f"BigQuery stopped the query: {msg or 'timed out'}")
    if isinstance(exc, gexc.Forbidden | gexc.PermissionDenied):
        return PermissionDeniedError(f"BigQuery denied access: {msg}")
    if isinstance(exc, gexc.NotFound):
        if re.search(r"Not found: (Project|Dataset)", msg) and "Table" not in msg:
            return DatabaseNotFoundError(f"BigQuery project or dataset not found: {msg}")
        return QueryError(f"BigQuery object not found: {msg}")
    if isinstance(exc, gexc.RetryError | requests.exceptions.ConnectionError
                  | requests.exceptions.Timeout | gexc.ServiceUnavailable):
        return HostUnreachableError(f"Could not reach BigQuery: {msg}")
    if isinstance(exc, gexc.GoogleAPICallError):
        return QueryError(f"BigQuery error: {msg}")
    return None
