"""Data sources: named warehouse credentials, encrypted at rest, and their stored catalogs.

    from runtime import datasources
    src = datasources.add("prod", {"type": "postgres", "host": ..., "password": ...})
    src = datasources.get("prod")                  # by name or id (ds_…)
    with src.connect() as conn: ...
    datasources.save_catalog(src.id, catalog)      # atomic replace; returns the snapshot id
    catalog = datasources.load_catalog("prod")     # the last stored Catalog, or None

Credentials are validated with ``connectors.parse_credentials`` and stored as Fernet tokens
(the runtime's ``encryption_key``); only ``get`` decrypts them. ``list_all`` and
``catalog_info`` never carry secrets. The name ``sample`` is special on every store: the
bundled DuckDB sample warehouse is registered under it on first use, so the embedded
default has something to introspect and query with no setup.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from connectors import Catalog, Connector, Table, connect, parse_credentials
from connectors.catalog import Database, Schema

from . import ids, secrets
from .bootstrap import get_runtime
from .durations import utcnow
from .errors import BusterError
from .store import datasources as sql

__all__ = [
    "SAMPLE_NAME",
    "CatalogInfo",
    "DataSource",
    "DataSourceError",
    "DataSourceExistsError",
    "DataSourceInfo",
    "DataSourceNotFoundError",
    "add",
    "catalog_info",
    "discard_catalog",
    "get",
    "list_all",
    "load_catalog",
    "load_staged_tables",
    "publish_catalog",
    "put",
    "remove",
    "save_catalog",
    "search_tables",
    "search_text",
    "stage_catalog",
    "update_staged_tables",
]

SAMPLE_NAME = "sample"


class DataSourceError(BusterError):
    code = "DATA_SOURCE_ERROR"


class DataSourceNotFoundError(DataSourceError):
    code = "DATA_SOURCE_NOT_FOUND"


class DataSourceExistsError(DataSourceError):
    code = "DATA_SOURCE_EXISTS"


@dataclass(frozen=True)
class DataSourceInfo:
    """A data source without its credentials (safe to print and return from APIs)."""

    id: str
    name: str
    type: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class DataSource(DataSourceInfo):
    """A data source with its decrypted credentials model (secrets stay ``SecretStr``)."""

    credentials: Any = field(repr=False)

    def connect(self) -> Connector:
        return connect(self.credentials)

    def info(self) -> DataSourceInfo:
        return DataSourceInfo(self.id, self.name, self.type, self.created_at, self.updated_at)


@dataclass(frozen=True)
class CatalogInfo:
    snapshot_id: str
    source_id: str
    warehouse_type: str
    introspected_at: datetime
    published_at: datetime | None
    run_id: str | None
    counts: dict[str, int]


# ------------------------------------------------------------------ data sources
def add(name: str, credentials: dict[str, Any] | BaseModel) -> DataSource:
    """Register a data source. Raises ``InvalidCredentialsError`` (field errors) or
    ``DataSourceExistsError`` when the name is taken."""
    name = _check_name(name)
    creds = parse_credentials(credentials)
    now = utcnow()
    row = {
        "id": ids.new_id("ds"),
        "name": name,
        "type": creds.type,
        "credentials": _encrypt(creds),
        "created_at": now,
        "updated_at": now,
    }
    try:
        sql.insert_source(get_runtime().store, row)
    except sql.DuplicateNameError:
        raise DataSourceExistsError(
            f"a data source named {name!r} already exists; remove it first or pick another name"
        ) from None
    return DataSource(row["id"], name, creds.type, now, now, creds)


def put(name: str, credentials: dict[str, Any] | BaseModel) -> DataSource:
    """Add the data source, or replace the credentials of the one with that name (its id
    and catalog stay). ``introspect-data`` uses this for inline credentials."""
    creds = parse_credentials(credentials)
    store = get_runtime().store
    for _ in range(3):  # a concurrent add of the same name: look again
        row = sql.find_source(store, _check_name(name))
        if row is None:
            try:
                return add(name, creds)
            except DataSourceExistsError:
                continue
        sql.replace_credentials(store, row["id"], creds.type, _encrypt(creds))
        return get(row["id"])
    raise DataSourceError(f"could not save data source {name!r}")


def get(id_or_name: str) -> DataSource:
    store = get_runtime().store
    row = sql.find_source(store, id_or_name)
    if row is None and id_or_name == SAMPLE_NAME:
        _register_sample()
        row = sql.find_source(store, id_or_name)
    if row is None:
        raise DataSourceNotFoundError(f"no data source with id or name {id_or_name!r}")
    return DataSource(
        row["id"],
        row["name"],
        row["type"],
        row["created_at"],
        row["updated_at"],
        _decrypt(row["name"], row["credentials"]),
    )


def list_all() -> list[DataSourceInfo]:
    return [
        DataSourceInfo(r["id"], r["name"], r["type"], r["created_at"], r["updated_at"])
        for r in sql.list_sources(get_runtime().store)
    ]


def remove(id_or_name: str) -> None:
    """Delete the data source and its catalogs."""
    row = sql.find_source(get_runtime().store, id_or_name)
    if row is None or not sql.delete_source(get_runtime().store, row["id"]):
        raise DataSourceNotFoundError(f"no data source with id or name {id_or_name!r}")


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= 256:
        raise DataSourceError("a data source name has 1 to 256 characters")
    return name


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, SecretBytes):
        return value.get_secret_value().decode()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value


def _encrypt(creds: BaseModel) -> bytes:
    # python mode keeps SecretStr objects so they can be revealed for the ciphertext only
    plain = json.dumps(_reveal(creds.model_dump(mode="python", exclude_none=True)), default=str)
    return secrets.encrypt(get_runtime().encryption_key, plain).encode()


def _decrypt(name: str, blob: bytes) -> Any:
    from cryptography.fernet import InvalidToken

    try:
        plain = secrets.decrypt(get_runtime().encryption_key, bytes(blob).decode())
    except InvalidToken:
        raise DataSourceError(
            f"cannot decrypt the credentials of data source {name!r}: BUSTER_ENCRYPTION_KEY "
            "is not the key they were stored with"
        ) from None
    return parse_credentials(json.loads(plain))


def _register_sample() -> None:
    """The bundled DuckDB sample, built in the data dir on first use (absolute path, so a
    worker started from another directory opens the same file)."""
    env = os.environ.get("BUSTER_SAMPLE_WAREHOUSE")
    path = Path(env) if env else Path(get_runtime().settings.data_dir) / "sample_warehouse.duckdb"
    with contextlib.suppress(DataSourceExistsError):  # another process registered it first
        add(SAMPLE_NAME, {"type": "duckdb", "path": str(path.resolve()), "sample": True})


# ------------------------------------------------------------------ catalogs
def search_text(table: Table) -> str:
    """What a LIKE search over ``catalog_tables.search_text`` matches: names, comments and
    profiled sample values, lower-cased."""
    parts = [table.qualified_name, table.comment or ""]
    for col in table.columns:
        parts += [col.name, col.comment or ""]
        if col.profile is not None:
            parts += [str(v) for v in col.profile.sample_values]
    return " ".join(p for p in parts if p).lower()


def _table_rows(snapshot_id: str, tables: list[Table]) -> list[dict[str, Any]]:
    return [
        {
            "snapshot_id": snapshot_id,
            "position": i,
            "database_name": tbl.database,
            "schema_name": tbl.schema,
            "name": tbl.name,
            "kind": tbl.kind,
            "comment": tbl.comment,
            "search_text": search_text(tbl),
            "doc": tbl.model_dump_json(),
        }
        for i, tbl in enumerate(tables)
    ]


def _snapshot_row(source_id: str, catalog: Catalog, run_id: str | None) -> dict[str, Any]:
    return {
        "id": ids.new_id("cs"),
        "source_id": source_id,
        "warehouse_type": catalog.warehouse_type,
        "introspected_at": catalog.introspected_at,
        "created_at": utcnow(),
        "run_id": run_id,
        "table_count": len(catalog.tables),
        "counts": catalog.counts(),
        "databases": [d.model_dump(mode="json") for d in catalog.databases],
        "schemas": [s.model_dump(mode="json") for s in catalog.schemas],
    }


def stage_catalog(source_id: str, catalog: Catalog, *, run_id: str | None = None) -> str:
    """Store ``catalog`` as a staged snapshot (invisible to ``load_catalog`` until
    ``publish_catalog``); returns its id. Profiles may be added with
    ``update_staged_tables`` meanwhile."""
    src = _source_row(source_id)
    snap = _snapshot_row(src["id"], catalog, run_id)
    sql.stage_snapshot(get_runtime().store, snap, _table_rows(snap["id"], catalog.tables))
    return str(snap["id"])


def publish_catalog(source_id: str, snapshot_id: str) -> bool:
    """Make a staged snapshot the source's catalog, atomically; False if it already was."""
    return sql.publish_snapshot(get_runtime().store, _source_row(source_id)["id"], snapshot_id)


def save_catalog(source_id: str, catalog: Catalog, *, run_id: str | None = None) -> str:
    """Store ``catalog`` as the source's catalog, replacing the previous one atomically (a
    concurrent ``load_catalog`` returns the old or the new catalog, whole). Returns the
    snapshot id."""
    store = get_runtime().store
    src = _source_row(source_id)
    snap = _snapshot_row(src["id"], catalog, run_id)
    with store.begin() as conn:
        sql.stage_snapshot(store, snap, _table_rows(snap["id"], catalog.tables), conn)
        sql.publish_snapshot(store, src["id"], snap["id"], conn)
    return str(snap["id"])


def discard_catalog(snapshot_id: str) -> None:
    sql.discard_snapshot(get_runtime().store, snapshot_id)


def load_catalog(source_id: str) -> Catalog | None:
    """The source's current catalog, or None if it was never introspected."""
    store = get_runtime().store
    src = _source_row(source_id)
    for _ in range(5):
        snap = sql.current_snapshot(store, src["id"])
        if snap is None:
            return None
        cached = _CACHE.get(snap["id"])
        if cached is not None:
            return cached.model_copy(update={"tables": list(cached.tables)})
        docs = sql.table_docs(store, snap["id"])
        # A publish may have deleted this snapshot between the two reads (it keeps one
        # previous snapshot, so that takes two publishes): then read the new one.
        if len(docs) == snap["table_count"]:
            catalog = _catalog(snap, [d for _, d in docs])
            _remember(snap["id"], catalog)
            return catalog.model_copy(update={"tables": list(catalog.tables)})
        time.sleep(0.01)
    raise DataSourceError(f"the catalog of {source_id!r} kept changing while it was read")


def search_tables(source_id: str, query: str, limit: int = 50) -> list[Table]:
    """Tables of the current catalog whose names, comments or sample values contain
    ``query`` (case-insensitive), without loading the whole catalog."""
    store = get_runtime().store
    snap = sql.current_snapshot(store, _source_row(source_id)["id"])
    if snap is None:
        return []
    docs = sql.search_docs(store, snap["id"], query.lower(), limit)
    return [Table.model_validate_json(d) for d in docs]


# Published snapshots never change, so a loaded catalog can be reused by snapshot id. Callers
# get a new Catalog and tables list; the Table objects are shared: treat them as read-only.
_CACHE: OrderedDict[str, Catalog] = OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()


def _remember(snapshot_id: str, catalog: Catalog) -> None:
    with _CACHE_LOCK:
        _CACHE[snapshot_id] = catalog
        _CACHE.move_to_end(snapshot_id)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def load_staged_tables(snapshot_id: str, positions: list[int]) -> dict[int, Table]:
    """Tables of a snapshot by position (profiling children read their share)."""
    docs = sql.table_docs(get_runtime().store, snapshot_id, positions)
    return {p: Table.model_validate_json(d) for p, d in docs}


def update_staged_tables(snapshot_id: str, tables: dict[int, Table]) -> int:
    rows = [
        {"position": p, "doc": tbl.model_dump_json(), "search_text": search_text(tbl)}
        for p, tbl in tables.items()
    ]
    return sql.update_staged_tables(get_runtime().store, snapshot_id, rows)


def catalog_info(source_id: str) -> CatalogInfo | None:
    snap = sql.current_snapshot(get_runtime().store, _source_row(source_id)["id"])
    if snap is None:
        return None
    return CatalogInfo(
        snapshot_id=snap["id"],
        source_id=snap["source_id"],
        warehouse_type=snap["warehouse_type"],
        introspected_at=snap["introspected_at"],
        published_at=snap["published_at"],
        run_id=snap["run_id"],
        counts=dict(snap["counts"]),
    )


def _source_row(id_or_name: str) -> Any:
    row = sql.find_source(get_runtime().store, id_or_name)
    if row is None:
        raise DataSourceNotFoundError(f"no data source with id or name {id_or_name!r}")
    return row


def _catalog(snap: Any, docs: list[str]) -> Catalog:
    # One JSON document validated in one pass (pydantic-core, no Python json.loads per
    # table): this is what keeps a 10,000-table catalog fast to load.
    head = {
        "warehouse_type": snap["warehouse_type"],
        "introspected_at": snap["introspected_at"].isoformat(),
        "databases": [
            Database.model_validate(d).model_dump(mode="json") for d in snap["databases"]
        ],
        "schemas": [Schema.model_validate(s).model_dump(mode="json") for s in snap["schemas"]],
    }
    text = json.dumps(head)[:-1] + ', "tables": [' + ",".join(docs) + "]}"
    return Catalog.model_validate_json(text)
