"""``introspect-data`` end to end on the runtime (SQLite + in-process broker, and
Postgres + RabbitMQ) against real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from sqlalchemy import select, text

from actors.introspect_data import introspect_data
from runtime import RunStatus, get_runtime, runs
from runtime import datasources as ds
from runtime.store import tables as t
from tests.helpers import wait_final
from tests.integration.connectors.conftest import (
    MYSQL_HOST,
    MYSQL_PORT,
    PG_ADMIN_USER,
    PG_HOST,
    closed_tcp_port,
    unique,
)
from tests.integration.introspect_data._support import FlakyProxy, mysql_sessions, pg_sessions

pytestmark = pytest.mark.integration


def _run_text(run_id: str) -> str:
    """Everything stored about a run and its children: row, logs, steps, as one string."""
    engine = get_runtime().store.engine
    with engine.connect() as conn:
        ids = [run_id] + [r[0] for r in conn.execute(
            select(t.runs.c.id).where(t.runs.c.parent_id == run_id))]
        parts = [json.dumps(dict(r), default=str) for r in conn.execute(
            select(t.runs).where(t.runs.c.id.in_(ids))).mappings()]
        for table in (t.run_logs, t.run_steps, t.run_attempts):
            parts += [json.dumps(dict(r), default=str) for r in conn.execute(
                select(table).where(table.c.run_id.in_(ids))).mappings()]
    return "\n".join(parts)


def test_postgres_end_to_end_catalog_progress_children_sessions(
    env: Any, worker: Any, pg_creds: dict[str, Any]
) -> None:
    app = pg_creds["application_name"]
    src = ds.add(unique("pg"), pg_creds)
    assert pg_sessions(app) == 0
    handle = introspect_data.trigger(
        {"data_source": src.name, "filters": {"schemas": ["shop"]}, "profile_chunk_size": 2}
    )
    run = wait_final(handle.id, timeout=60)
    assert run.status == RunStatus.COMPLETED, run.error
    out = run.output
    assert out["success"] is True and out["error"] is None
    assert out["data_source"] == src.name and out["data_source_id"] == src.id
    # shop: customers, orders, order_lines, shipments + big_orders, order_totals
    assert (out["databases"], out["schemas"], out["tables"], out["views"]) == (1, 1, 4, 2)
    assert out["profiled_tables"] == 6 and out["profile_failures"] == 0
    assert out["duration_ms"] > 0

    catalog = ds.load_catalog(src.id)
    assert catalog is not None and len(catalog.tables) == 6
    orders = catalog.table("shop", "orders")
    assert orders.primary_key == ["id"]
    assert [(f.columns, f.referenced_table, f.referenced_columns)
            for f in orders.foreign_keys] == [(["customer_id"], "customers", ["id"])]
    shipments = catalog.table("shop", "shipments")
    assert shipments.foreign_keys[0].columns == ["order_id", "line_no"]
    assert catalog.table("shop", "customers").comment == "People who buy"
    email = catalog.table("shop", "customers").column("email")
    assert email.profile is not None and email.profile.distinct_count == 50
    assert ds.catalog_info(src.id).snapshot_id == out["snapshot_id"]  # type: ignore[union-attr]
    assert [tb.name for tb in ds.search_tables(src.id, "user7@")] == ["customers"]

    # progress metadata, and profiling ran as child runs of this run (3 chunks of 2 tables);
    # a late periodic flush can no longer overwrite the final metadata
    assert run.metadata["phase"] == "completed"
    assert run.metadata["tables_total"] == run.metadata["tables_done"] == 6
    children = get_runtime().store.children(run.id)
    assert len(children) == 3
    assert {c["task_identifier"] for c in children} == {"introspect-profile-tables"}
    assert all(c["parent_id"] == run.id and c["status"] == "COMPLETED" for c in children)
    # the resume after the children replayed the recorded introspection, not a new one
    messages = [r["message"] for r in runs.logs(run.id)]
    assert messages.count("introspected") == 1 and messages.count("connection ok") == 1
    # every connection the parent and the children opened was closed
    assert pg_sessions(app) == 0


def test_mysql_end_to_end_with_password_user(
    env: Any, worker: Any, mysql_db: str, mysql_user: tuple[str, str]
) -> None:
    user, password = mysql_user
    before = mysql_sessions(user)
    creds = {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT, "database": mysql_db,
             "user": user, "password": password}
    name = unique("my")
    # inline credentials: saved as a data source once they connect
    run = wait_final(introspect_data.trigger(
        {"data_source": {"name": name, "credentials": creds}, "profile_chunk_size": 3}
    ).id, timeout=60)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output["success"] is True
    assert (run.output["tables"], run.output["views"]) == (4, 1)
    catalog = ds.load_catalog(name)
    assert catalog is not None
    lines = catalog.table(mysql_db, "order_lines")
    assert lines.primary_key == ["order_id", "line_no"]
    assert lines.foreign_keys[0].referenced_table == "orders"
    assert len(get_runtime().store.children(run.id)) == 2
    assert mysql_sessions(user) == before == 0
    assert ds.get(name).credentials.password.get_secret_value() == password
    assert password not in _run_text(run.id)


def test_wrong_password_is_a_clear_result_without_retries_or_leaks(
    env: Any, worker: Any, mysql_db: str, mysql_user: tuple[str, str]
) -> None:
    user, password = mysql_user
    wrong = "Wrong-" + password[::-1]
    name = unique("bad")
    creds = {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT, "database": mysql_db,
             "user": user, "password": wrong}
    run = wait_final(introspect_data.trigger(
        {"data_source": {"name": name, "credentials": creds}}).id)
    assert run.status == RunStatus.COMPLETED and run.attempt_count == 1
    assert run.output["success"] is False
    assert run.output["error"]["code"] == "AUTH_FAILED"
    assert user in run.output["error"]["message"]
    assert run.metadata["phase"] == "failed"
    stored = _run_text(run.id)
    assert wrong not in stored and password not in stored
    with pytest.raises(ds.DataSourceNotFoundError):
        ds.get(name)  # credentials that never connected are not saved
    assert mysql_sessions(user) == 0


def test_unreachable_host_and_unknown_source_fail_fast(env: Any, worker: Any) -> None:
    port = closed_tcp_port()
    creds = {"type": "postgres", "host": "127.0.0.1", "port": port, "database": "x",
             "user": PG_ADMIN_USER, "password": "Not-A-Real-Secret-1"}
    run = wait_final(introspect_data.trigger(
        {"data_source": {"name": unique("down"), "credentials": creds}}).id)
    assert run.status == RunStatus.COMPLETED and run.attempt_count == 1
    assert run.output["success"] is False
    assert run.output["error"]["code"] == "HOST_UNREACHABLE"
    assert str(port) in run.output["error"]["message"]
    assert "Not-A-Real-Secret-1" not in _run_text(run.id)

    run = wait_final(introspect_data.trigger({"data_source": "no-such-source"}).id)
    assert run.output["success"] is False
    assert run.output["error"]["code"] == "DATA_SOURCE_NOT_FOUND"


def test_missing_driver_names_the_extra(
    env: Any, worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pymysql", None)  # import pymysql now raises ImportError
    creds = {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT, "database": "x",
             "user": "root"}
    run = wait_final(introspect_data.trigger(
        {"data_source": {"name": unique("nodriver"), "credentials": creds}}).id)
    assert run.output["success"] is False and run.attempt_count == 1
    assert run.output["error"]["code"] == "MISSING_DRIVER"
    assert "pip install 'buster-jobs[mysql]'" in run.output["error"]["message"]


def test_transient_network_error_is_retried(
    env: Any, worker: Any, pg_creds: dict[str, Any], flaky_pg: FlakyProxy
) -> None:
    src = ds.add(unique("flaky"), {**pg_creds, "host": "127.0.0.1", "port": flaky_pg.port})
    run = wait_final(introspect_data.trigger(
        {"data_source": src.id, "profile": False}).id, timeout=60)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.output["success"] is True and run.attempt_count == 2
    first = run.attempts[0]
    assert first.status == "FAILED" and "CONNECTION_FAILED" in first.error["message"]
    assert run.metadata["tables_done"] == run.metadata["tables_total"] > 0


def test_credentials_are_encrypted_at_rest(env: Any) -> None:
    secret = "Plain-" + unique("pw")
    src = ds.add(unique("enc"), {"type": "postgres", "host": PG_HOST, "port": 5432,
                                 "database": "d", "user": "u", "password": secret})
    with get_runtime().store.engine.connect() as conn:
        blob = conn.execute(text("SELECT credentials FROM data_sources WHERE id = :id"),
                            {"id": src.id}).scalar()
    assert blob and secret.encode() not in bytes(blob) and b'"password"' not in bytes(blob)
    assert ds.get(src.name).credentials.password.get_secret_value() == secret
    assert secret not in repr(ds.get(src.id)) and secret not in repr(ds.list_all())
