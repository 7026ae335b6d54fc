"""MySQL connector over the wire: PyMySQL against the real MariaDB server."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql.cursors
import pytest

import connectors.mysql as mysql_module
from connectors import (
    AuthenticationError,
    ConnectionFailedError,
    DatabaseNotFoundError,
    QueryTimeoutError,
    ReadOnlyViolationError,
    connect,
)
from connectors._mysql_catalog import (
    COLUMNS_FLAT_JSON_SQL,
    COLUMNS_JSON_SQL,
    KEYS_JSON_SQL,
    TABLES_JSON_SQL,
    columns_from_flat_json,
    columns_from_json,
    json_rows,
)
from connectors.catalog import Catalog, Column
from tests.integration.connectors.conftest import (
    MYSQL_ADMIN_USER,
    MYSQL_HOST,
    MYSQL_PORT,
    closed_tcp_port,
    mysql_admin,
    mysql_user_with_password,
    throwaway_mysql_database,
)

pytestmark = pytest.mark.integration


def _processes(database: str) -> list[tuple[int, str, str]]:
    with mysql_admin() as admin, admin.cursor() as cur:
        cur.execute(
            "SELECT ID, COMMAND, COALESCE(INFO, '') FROM information_schema.PROCESSLIST "
            "WHERE DB = %s", [database])
        return [(int(i), str(c), str(q)) for i, c, q in cur.fetchall()]


def test_test_connection_reports_version(mysql_credentials: dict[str, Any]) -> None:
    with connect(mysql_credentials) as conn:
        info = conn.test_connection()
    assert info.server_version and "MariaDB" in info.server_version


def test_introspect_tables_views_keys_comments(mysql_credentials: dict[str, Any]) -> None:
    db = mysql_credentials["database"]
    with connect(mysql_credentials) as conn:
        catalog = conn.introspect()
    assert [d.name for d in catalog.databases] == [db]
    assert {t.name: t.kind for t in catalog.tables} == {
        "customers": "table", "orders": "table", "order_lines": "table",
        "shipments": "table", "big_orders": "view"}

    customers = catalog.table(db, "customers")
    assert (customers.database, customers.schema) == (db, db)
    assert customers.comment == "People who buy"
    assert customers.primary_key == ["id"]
    assert customers.row_count == 50
    assert customers.size_bytes and customers.size_bytes > 0
    assert [c.position for c in customers.columns] == list(range(1, 10))
    email = customers.column("email")
    assert (email.data_type, email.max_length, email.nullable, email.comment) == (
        "varchar(120)", 120, False, "Login email")
    balance = customers.column("balance")
    assert (balance.data_type, balance.precision, balance.scale) == ("decimal(12,2)", 12, 2)
    assert customers.column("country").default == "'US'"
    assert customers.column("balance").default is None
    assert customers.column("last_seen").data_type == "datetime(3)"

    [fk] = catalog.table(db, "orders").foreign_keys
    assert (fk.name, fk.columns, fk.referenced_schema, fk.referenced_table,
            fk.referenced_columns) == ("fk_orders_customer", ["customer_id"], db,
                                       "customers", ["id"])
    assert catalog.table(db, "order_lines").primary_key == ["order_id", "line_no"]
    [composite] = catalog.table(db, "shipments").foreign_keys
    assert composite.columns == ["order_id", "line_no"]
    assert composite.referenced_columns == ["order_id", "line_no"]

    view = catalog.table(db, "big_orders")
    assert view.comment is None and view.row_count is None
    assert view.view_definition and "100" in view.view_definition
    assert catalog.counts()["columns"] == 9 + 4 + 4 + 3 + 2


# Values that the JSON path (MariaDB 10.5+) must map exactly like the row path: quotes,
# backslashes, control characters and non-ASCII in names and comments, a default that is
# the *string* 'NULL', comments that are one space or the word null, every length/precision
# kind, generated and system-versioned columns, a composite and a multi-FK table.
_AWKWARD_SCHEMA = [
    """CREATE TABLE `we"ird``tbl ü` (
      `id` int NOT NULL AUTO_INCREMENT PRIMARY KEY COMMENT ' ',
      `na"me\\x` varchar(50) DEFAULT 'NULL'
          COMMENT 'quote " back \\\\ slash \t tab, newline\nend, ünïcødé € \\Z',
      `n2` varchar(10) DEFAULT NULL COMMENT 'null',
      `n3` char(3) NOT NULL,
      `n4` varchar(10) DEFAULT 'null',
      `e` enum('a', 'b''c') DEFAULT 'a',
      `s` set('x', 'y') DEFAULT NULL,
      `d` decimal(30, 10) unsigned zerofill DEFAULT 1.5,
      `f` double(10, 3) DEFAULT NULL,
      `t` timestamp(3) NOT NULL DEFAULT current_timestamp(3) ON UPDATE current_timestamp(3),
      `g` int GENERATED ALWAYS AS (id * 2) VIRTUAL,
      `b` blob,
      `vb` varbinary(20) DEFAULT 'ab',
      `u` uuid DEFAULT uuid(),
      `bits` bit(3) DEFAULT b'101',
      `txt` longtext COMMENT ''
    ) COMMENT 'tbl comment with \\' quote'""",
    "CREATE TABLE p (a int, b int, PRIMARY KEY (b, a)) COMMENT 'VIEW'",
    """CREATE TABLE c (x int, y int, z int,
      CONSTRAINT `fk c` FOREIGN KEY (y, x) REFERENCES p (b, a),
      FOREIGN KEY (z) REFERENCES `we"ird``tbl ü` (id))""",
    "CREATE TABLE sv (a int) WITH SYSTEM VERSIONING",
    "CREATE SEQUENCE seq1",
]


@pytest.fixture(scope="module")
def awkward_mysql_credentials() -> Iterator[dict[str, Any]]:
    with throwaway_mysql_database("bj_it_myj") as name:
        with mysql_admin(name) as conn, conn.cursor() as cur:
            for statement in _AWKWARD_SCHEMA:
                cur.execute(statement)
        yield {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT, "database": name,
               "user": MYSQL_ADMIN_USER}


def _tables(catalog: Catalog) -> list[dict[str, Any]]:
    return [t.model_dump() for t in catalog.tables]


def test_introspect_json_columns_match_row_columns(
    awkward_mysql_credentials: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = awkward_mysql_credentials["database"]
    with connect(awkward_mysql_credentials) as conn:
        assert isinstance(conn, mysql_module.MySQLConnector)
        by_json = conn.introspect()  # one document per share
        assert conn._mariadb and conn._version >= mysql_module._JSON_CATALOG_SINCE
        # A share's document refused: the share is read again, one document per table.
        by_table: list[Any] = []
        monkeypatch.setattr(mysql_module, "columns_from_flat_json", lambda rows: None)
        monkeypatch.setattr(mysql_module, "columns_from_json",
                            lambda rows: by_table.append(columns_from_json(rows)) or by_table[-1])
        by_table_json = conn.introspect()
        assert len(by_table) == len(mysql_module.COLUMN_SHARES) and None not in by_table
        monkeypatch.setattr(mysql_module, "_JSON_CATALOG_SINCE", (999,))  # row path
        by_rows = conn.introspect()
    assert _tables(by_json) == _tables(by_table_json) == _tables(by_rows)
    assert {t.name for t in by_json.tables} == {
        'we"ird`tbl ü', "p", "c", "sv", "customers", "orders", "order_lines", "shipments",
        "big_orders"}
    weird = by_json.table(db, 'we"ird`tbl ü')
    assert weird.comment == "tbl comment with ' quote"
    assert weird.column("id").comment == " "
    name = weird.column('na"me\\x')
    assert (name.default, name.max_length) == ("'NULL'", 50)
    assert name.comment == 'quote " back \\ slash \t tab, newline\nend, ünïcødé € \x1a'
    assert (weird.column("n2").default, weird.column("n2").comment) == (None, "null")
    assert weird.column("txt").comment is None
    assert weird.column("d").data_type == "decimal(30,10) unsigned zerofill"
    assert (weird.column("d").precision, weird.column("d").scale) == (30, 10)
    assert weird.column("f").precision is None
    assert weird.column("e").max_length == 3
    assert [c.position for c in weird.columns] == list(range(1, 17))
    assert by_json.table(db, "p").comment == "VIEW"
    # The JSON documents really were what the first introspection read (each falls back to
    # its row query silently), and the two shares of the columns split the tables.
    with mysql_admin(db) as admin, admin.cursor() as cur:
        halves = []
        for share in mysql_module.COLUMN_SHARES:
            cur.execute(COLUMNS_JSON_SQL, [[db], *share])
            half = columns_from_json(list(cur.fetchall()))
            assert half is not None  # may be empty: the hash of a random database name
            halves.append(half)
        assert len(mysql_module.COLUMN_SHARES) == 2 and not halves[0].keys() & halves[1].keys()
        cur.execute(COLUMNS_JSON_SQL, [[db], 1, [0]])  # every table: modulus 1, remainder 0
        by_doc = columns_from_json(list(cur.fetchall()))
        # Every table's columns, and the sequence's (TABLES leaves sequences out).
        assert by_doc is not None and len(by_doc) == len(by_json.tables) + 1
        assert by_doc[(db, 'we"ird`tbl ü')] == weird.columns
        assert by_doc == {**halves[0], **halves[1]}
        # The one document per share holds the same columns, table by table.
        for share, half in zip(mysql_module.COLUMN_SHARES, halves, strict=True):
            cur.execute(COLUMNS_FLAT_JSON_SQL, [[db], *share])
            assert columns_from_flat_json(list(cur.fetchall())) == half
        cur.execute(COLUMNS_FLAT_JSON_SQL, [[db], 1, [0]])
        assert columns_from_flat_json(list(cur.fetchall())) == by_doc
        key_columns = sum(len(t.primary_key) + sum(len(fk.columns) for fk in t.foreign_keys)
                          for t in by_json.tables)
        for sql, expected in ((TABLES_JSON_SQL, len(by_json.tables)),
                              (KEYS_JSON_SQL, key_columns)):
            cur.execute(sql, [[db]])
            docs = json_rows(list(cur.fetchall()))
            assert docs is not None and len(docs) == expected
    # A table whose JSON the server could not build (NULL), cut short, or that lacks a
    # column (GROUP_CONCAT skips a NULL piece silently): the row path.
    assert columns_from_json([(db, "p", 1, None)]) is None
    assert columns_from_json([(db, "p", 1, '[{"name": "a", "position": 1')]) is None
    one = '[{"name": "a", "data_type": "int(11)", "position": 1}]'
    assert columns_from_json([(db, "p", 2, one)]) is None
    assert columns_from_json([(db, "p", 1, one)]) == {(db, "p"): [
        Column(name="a", data_type="int(11)", position=1)]}
    # A share's one document: empty; not built (NULL); short of a column; the columns not
    # table by table in ordinal order; tables and names that do not pair up.
    def flat(count: int, names: list[Any], positions: list[int]) -> Any:
        columns = [{"name": f"c{i}", "data_type": "int", "position": p}
                   for i, p in enumerate(positions)]
        return columns_from_flat_json([(count, json.dumps(names), json.dumps(columns))])

    assert columns_from_flat_json([(0, None, None)]) == {}
    assert columns_from_flat_json([(1, None, None)]) is None
    assert columns_from_flat_json([(1, '[["d", "p"]]', '[{"name": "a"')]) is None
    two = flat(3, [["d", "p"], ["d", "q"]], [1, 2, 1])
    assert two is not None and [[c.name for c in v] for v in two.values()] == [
        ["c0", "c1"], ["c2"]] and list(two) == [("d", "p"), ("d", "q")]
    assert flat(4, [["d", "p"], ["d", "q"]], [1, 2, 1]) is None  # a column skipped
    assert flat(3, [["d", "p"], ["d", "q"]], [1, 1, 3]) is None  # a gap
    assert flat(3, [["d", "p"]], [1, 3, 2]) is None  # out of order
    assert flat(3, [["d", "p"]], [2, 1, 2]) is None  # before the first table
    assert flat(3, [["d", "p"]], [1, 2, 1]) is None  # a table without a name
    assert flat(2, [["d", "p"], ["d", "q"]], [1, 2]) is None  # a name without columns
    assert flat(2, [["d", "p"], ["d", "p"]], [1, 1]) is None  # the same table twice
    assert flat(1, ["p"], [1]) is None  # a name that is not (schema, table)
    # The one-document TABLES and KEYS: empty, not built (NULL), short or malformed.
    assert json_rows([(0, None)]) == []
    assert json_rows([(2, '[["a"], ["b"]]')]) == [["a"], ["b"]]
    assert json_rows([(2, '["[\\"a\\"]", "[\\"b\\"]"]')]) is None  # rows quoted as strings
    assert json_rows([(2, None)]) is None
    assert json_rows([(3, '[["a"], ["b"]]')]) is None
    assert json_rows([(2, '[["a"], ["b"')]) is None
    assert sorted((fk.name, fk.columns, fk.referenced_columns)
                  for fk in by_json.table(db, "c").foreign_keys) == [
        ("c_ibfk_1", ["z"], ["id"]), ("fk c", ["y", "x"], ["b", "a"])]


def test_introspect_share_over_max_allowed_packet_is_read_by_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A share's one document longer than max_allowed_packet comes back as NULL: the share is
    # read again, one document per table. 4 KiB here (the server's global, read by each new
    # connection). Twelve tables with a 900-byte column comment: whichever way the tables
    # hash, one share's document is over 5 KiB, and no table's is over 1 KiB.
    with throwaway_mysql_database("bj_it_mypk") as db:
        with mysql_admin(db) as admin, admin.cursor() as cur:
            for i in range(12):
                cur.execute(f"CREATE TABLE w{i} (id int PRIMARY KEY COMMENT %s, v int)",
                            ["x" * 900])
            cur.execute("SELECT @@GLOBAL.max_allowed_packet")
            (packet,) = cur.fetchone()
        credentials = {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT,
                       "database": db, "user": MYSQL_ADMIN_USER}
        with connect(credentials) as conn:
            expected = conn.introspect()
        flat: list[Any] = []
        monkeypatch.setattr(
            mysql_module, "columns_from_flat_json",
            lambda rows: flat.append(columns_from_flat_json(rows)) or flat[-1])
        with mysql_admin() as admin, admin.cursor() as cur:
            cur.execute("SET GLOBAL max_allowed_packet = 4096")
            try:
                with connect(credentials) as conn:
                    limited = conn.introspect()
            finally:
                cur.execute("SET GLOBAL max_allowed_packet = %s", [packet])
    assert len(flat) == len(mysql_module.COLUMN_SHARES) and None in flat
    assert _tables(limited) == _tables(expected)
    assert limited.table(db, "w11").column("id").comment == "x" * 900


@pytest.mark.parametrize("allowed", [1, 2])
def test_introspect_with_fewer_connections_allowed(
    mysql_credentials: dict[str, Any], allowed: int
) -> None:
    # Columns are read in two shares on connections of their own; a share whose connection
    # the server refuses is read on the first connection.
    db = mysql_credentials["database"]
    with connect(mysql_credentials) as conn:
        expected = conn.introspect()
    with mysql_user_with_password(db, f"bj_u{allowed}") as (user, password):
        with mysql_admin() as admin, admin.cursor() as cur:
            cur.execute("ALTER USER %s@'127.0.0.1' WITH MAX_USER_CONNECTIONS %s",
                        (user, allowed))
            # VIEW_DEFINITION is empty without SHOW VIEW (the same for both paths).
            cur.execute(f"GRANT SHOW VIEW ON `{db}`.* TO %s@'127.0.0.1'", (user,))
        with connect({**mysql_credentials, "user": user, "password": password}) as conn:
            limited = conn.introspect()
    assert _tables(limited) == _tables(expected)


def test_tls_context_of_preferred_mode_is_built_only_when_used() -> None:
    # PyMySQL builds it on every connect (~50 ms: the system CA store), TLS or not.
    plain = mysql_module._Connection(host=MYSQL_HOST, port=MYSQL_PORT, defer_connect=True)
    assert plain.ssl and plain._tls_ctx is None
    ctx = plain.ctx
    assert (ctx.verify_mode, ctx.check_hostname) == (ssl.CERT_NONE, False)
    assert mysql_module._Connection(host=MYSQL_HOST, defer_connect=True).ctx is ctx
    verified = mysql_module._Connection(host=MYSQL_HOST, port=MYSQL_PORT, defer_connect=True,
                                        ssl_verify_cert=True)
    assert verified._tls_ctx is not None and verified.ctx.verify_mode == ssl.CERT_REQUIRED


def test_introspect_filters(mysql_credentials: dict[str, Any]) -> None:
    db = mysql_credentials["database"]
    with connect(mysql_credentials) as conn:
        only = conn.introspect({"tables": ["order*"], "exclude_tables": ["order_lines"]})
        none = conn.introspect({"databases": ["bj_nothing_matches_*"]})
        by_pattern = conn.introspect({"databases": [db[:-3] + "*"], "tables": ["shipments"]})
    assert [t.name for t in only.tables] == ["orders"]
    assert none.tables == [] and none.databases == []
    assert [t.name for t in by_pattern.tables] == ["shipments"]


def test_query_max_rows_and_normalised_values(mysql_credentials: dict[str, Any]) -> None:
    sql = ("SELECT id, email, balance, signed_up, last_seen, avatar, vip "
           "FROM customers WHERE id <= %s ORDER BY id")
    with connect(mysql_credentials) as conn:
        page = conn.query(sql, [10], max_rows=3)
        # The connection was dropped rather than drained; the next query reconnects.
        exact = conn.query(sql, [3], max_rows=3)
        empty = conn.query("SELECT id FROM customers WHERE id < 0")
    assert [c.name for c in page.columns] == ["id", "email", "balance", "signed_up",
                                              "last_seen", "avatar", "vip"]
    assert [c.type for c in page.columns][:4] == ["long", "var_string", "newdecimal", "date"]
    assert page.row_count == 3 and page.has_more_rows is True
    assert exact.row_count == 3 and exact.has_more_rows is False
    assert empty.rows == [] and empty.has_more_rows is False
    assert page.rows[0] == [1, "user1@example.com", "1.25", "2024-01-02",
                            "2024-01-01T01:00:00", "AQI=", 0]


def test_write_is_refused_by_the_server(mysql_credentials: dict[str, Any]) -> None:
    with connect(mysql_credentials) as conn:
        with pytest.raises(ReadOnlyViolationError):
            conn.query("INSERT INTO orders VALUES (9999, 1, 1, NULL)")
        with pytest.raises(ReadOnlyViolationError):
            conn.query("CREATE TABLE nope (a int)")
        assert conn.query("SELECT count(*) FROM orders").rows == [[120]]


def test_sleep_is_stopped_by_the_server(mysql_credentials: dict[str, Any]) -> None:
    db = mysql_credentials["database"]
    with connect(mysql_credentials) as conn:
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError) as err:
            conn.query("SELECT SLEEP(30)", timeout_s=0.5)
        assert time.monotonic() - start < 3
        assert err.value.code == "QUERY_TIMEOUT"
        procs = _processes(db)
        assert len(procs) == 1 and procs[0][1] == "Sleep"  # idle, not running SLEEP(30)
        assert conn.query("SELECT 1").rows == [[1]]


def test_benchmark_is_stopped_by_the_server(mysql_credentials: dict[str, Any]) -> None:
    # 10^10 rounds of MD5 would take many minutes. MariaDB cuts BENCHMARK() short at
    # max_statement_time and returns 0 rather than raising.
    db = mysql_credentials["database"]
    with connect(mysql_credentials) as conn:
        start = time.monotonic()
        conn.query("SELECT BENCHMARK(10000000000, MD5('x'))", timeout_s=0.5)
        assert time.monotonic() - start < 3
        assert not [p for p in _processes(db) if "BENCHMARK" in p[2]]


def test_close_ends_the_server_session(mysql_credentials: dict[str, Any]) -> None:
    db = mysql_credentials["database"]
    conn = connect(mysql_credentials)
    assert _processes(db) == []
    conn.query("SELECT 1")
    assert len(_processes(db)) == 1
    conn.close()
    deadline = time.monotonic() + 2  # the server reaps the thread just after COM_QUIT
    while _processes(db) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _processes(db) == []
    with connect(mysql_credentials) as ctx:
        ctx.query("SELECT 1")
        assert len(_processes(db)) == 1
    while _processes(db) and time.monotonic() < deadline + 2:
        time.sleep(0.02)
    assert _processes(db) == []


def test_wrong_password(mysql_credentials: dict[str, Any],
                        mysql_password_user: tuple[str, str]) -> None:
    user, _ = mysql_password_user
    secret = "Wr0ng-Secret-Value-123"
    creds = {**mysql_credentials, "user": user, "password": secret}
    with pytest.raises(AuthenticationError) as err:
        connect(creds).test_connection()
    assert err.value.code == "AUTH_FAILED" and err.value.retryable is False
    assert "Access denied" in str(err.value)
    assert secret not in str(err.value) and secret not in repr(err.value)
    assert err.value.__cause__ is not None


def test_right_password(mysql_credentials: dict[str, Any],
                        mysql_password_user: tuple[str, str]) -> None:
    user, password = mysql_password_user
    with connect({**mysql_credentials, "user": user, "password": password}) as conn:
        assert conn.query("SELECT count(*) FROM customers").rows == [[50]]


def test_unreachable_host_fails_fast(mysql_credentials: dict[str, Any]) -> None:
    creds = {**mysql_credentials, "host": MYSQL_HOST, "port": closed_tcp_port(),
             "password": "Hidden-Pass-42"}
    start = time.monotonic()
    with pytest.raises(ConnectionFailedError) as err:
        connect(creds).test_connection()
    assert time.monotonic() - start < 3
    assert err.value.code == "HOST_UNREACHABLE" and err.value.retryable is True
    assert "Hidden-Pass-42" not in str(err.value)


def test_missing_database(mysql_credentials: dict[str, Any]) -> None:
    creds = {**mysql_credentials, "database": "bj_no_such_db"}
    with pytest.raises(DatabaseNotFoundError) as err:
        connect(creds).test_connection()
    assert "bj_no_such_db" in str(err.value)


def test_profile_columns(mysql_credentials: dict[str, Any]) -> None:
    db = mysql_credentials["database"]
    with connect(mysql_credentials) as conn:
        catalog = conn.introspect({"tables": ["orders"]}, profile=True, profile_sample_rows=30)
    total = catalog.table(db, "orders").column("total").profile
    assert total is not None and 0 < total.sample_size <= 30
    assert total.null_count == 0 and len(total.sample_values) <= 20


def test_introspection_statements_do_not_grow_with_the_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Catalog queries are batched per schema: 40 more tables (keys, comments) cost the same
    # statements, on every connection the introspection opens.
    sent: list[str] = []
    lock = threading.Lock()
    execute = pymysql.cursors.Cursor.execute

    def counting(self: pymysql.cursors.Cursor, query: str, args: Any = None) -> int:
        with lock:
            sent.append(" ".join(query.split()[:3]))
        return execute(self, query, args)

    with throwaway_mysql_database("bj_it_myn") as db:
        creds = {"type": "mysql", "host": MYSQL_HOST, "port": MYSQL_PORT, "database": db,
                 "user": MYSQL_ADMIN_USER}
        monkeypatch.setattr(pymysql.cursors.Cursor, "execute", counting)
        with connect(creds) as conn:
            before = conn.introspect()
        first = list(sent)
        with mysql_admin(db) as admin, admin.cursor() as cur:
            for i in range(40):
                cur.execute(f"CREATE TABLE extra{i} (id int PRIMARY KEY, c varchar(5) "
                            f"COMMENT 'c{i}', o bigint, FOREIGN KEY (o) REFERENCES orders (id)) "
                            f"COMMENT 'extra {i}'")
        sent.clear()
        with connect(creds) as conn:
            after = conn.introspect()
        second = list(sent)
    assert len(after.tables) == len(before.tables) + 40
    extra = after.table(db, "extra39")
    assert (extra.comment, extra.primary_key, [c.comment for c in extra.columns]) == (
        "extra 39", ["id"], [None, "c39", None])
    assert [(fk.columns, fk.referenced_table) for fk in extra.foreign_keys] == [
        (["o"], "orders")]
    # Per connection: the read-only init command and the statement timeout; on the first
    # also the version, schemas, tables, keys and views; on the two others a half of the
    # columns each. Threads interleave them, so compare them as sets of statements.
    assert sorted(second) == sorted(first) and len(first) == 13, first
