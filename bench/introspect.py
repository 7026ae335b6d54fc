"""Benchmark: introspect 1,000 tables x 20 columns on PostgreSQL and MariaDB.

Builds a throwaway database on each server (primary keys, a foreign key per table to the
previous one, a comment on every table and on one column per table), then times, in the
same run:

- ours: ``connect(...).introspect()`` (a fresh connection, so connecting is included);
- baseline: SQLAlchemy's ``inspect(engine)`` reflecting the same tables one by one with
  ``get_columns``, ``get_pk_constraint``, ``get_foreign_keys`` and ``get_table_comment``.

Targets: ours <= 2 s, and >= 20x faster than the baseline. Run:
``.venv/bin/python bench/introspect.py [--tables 1000] [--columns 20] [--only postgres]
[--repeat 3] [--floor]``. With ``--repeat N`` both are timed N times, alternately, on the same
database (the first run of ours meets a cold table cache, the baseline never does: it runs
second); the verdict uses the median ratio.

``--floor`` (MariaDB/MySQL) also measures, on the same database in the same run, what no
introspection can avoid: the server reading ``information_schema`` COLUMNS, TABLES and
KEY_COLUMN_USAGE (each aggregated to one row, so nothing is sent or decoded) and pydantic
making the finished catalog's ~21,000 objects, from its own JSON or from Python data decoded
for free, whichever is cheaper. Spread over the machine's cores with nothing else to pay (no
connecting, sending or decoding), that is a lower bound on any introspection here, and the
baseline over it the best ratio any connector could show.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
import pymysql  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from connectors import connect  # noqa: E402

PG: dict[str, Any] = {"host": os.environ.get("BUSTER_BENCH_PG_HOST", "127.0.0.1"),
      "port": int(os.environ.get("BUSTER_BENCH_PG_PORT", "5432")),
      "user": os.environ.get("BUSTER_BENCH_PG_USER", "postgres")}
MY: dict[str, Any] = {"host": os.environ.get("BUSTER_BENCH_MYSQL_HOST", "127.0.0.1"),
      "port": int(os.environ.get("BUSTER_BENCH_MYSQL_PORT", "3306")),
      "user": os.environ.get("BUSTER_BENCH_MYSQL_USER", "root")}
TYPES = ["integer", "varchar(100)", "numeric(12,2)", "date", "text", "boolean",
         "bigint", "timestamp"]


def table_ddl(i: int, n_cols: int, *, mysql: bool) -> list[str]:
    cols = ["id integer PRIMARY KEY"]
    if i > 0:
        cols.append("prev_id integer")
    while len(cols) < n_cols:
        typ = TYPES[len(cols) % len(TYPES)]
        cols.append(f"c{len(cols)} {'datetime' if mysql and typ == 'timestamp' else typ}")
    if i > 0:
        schema = "" if mysql else "bench."
        cols.append(f"FOREIGN KEY (prev_id) REFERENCES {schema}t{i - 1:04d} (id)")
    name = f"t{i:04d}"
    if mysql:
        cols[-1 if i == 0 else -2] += " COMMENT 'a column comment'"
        return [f"CREATE TABLE {name} ({', '.join(cols)}) COMMENT 'table {i}'"]
    return [f"CREATE TABLE bench.{name} ({', '.join(cols)})",
            f"COMMENT ON TABLE bench.{name} IS 'table {i}'",
            f"COMMENT ON COLUMN bench.{name}.id IS 'a column comment'"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def reflect_one_by_one(url: str, schema: str | None, names: list[str]) -> int:
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        n = 0
        for name in names:
            n += len(insp.get_columns(name, schema=schema))
            insp.get_pk_constraint(name, schema=schema)
            insp.get_foreign_keys(name, schema=schema)
            insp.get_table_comment(name, schema=schema)
        return n
    finally:
        engine.dispose()


def alternate(ours: Callable[[], Any], base: Callable[[], int], repeat: int,
              check: Callable[[Any], None], n_cols: int) -> list[tuple[float, float]]:
    """Each side starts from a collected heap and leaves nothing alive for the other."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        ours_s, catalog = timed(ours)
        check(catalog)
        del catalog
        gc.collect()
        base_s, ncols = timed(base)
        assert ncols == n_cols, ncols
        runs.append((ours_s, base_s))
    return runs


def bench_postgres(n_tables: int, n_cols: int, repeat: int) -> list[tuple[float, float]]:
    db = f"bj_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        with psycopg.connect(**PG, dbname=db, autocommit=True) as conn:
            ddl = ["CREATE SCHEMA bench"]
            for i in range(n_tables):
                ddl += table_ddl(i, n_cols, mysql=False)
            conn.execute(";\n".join(ddl))
            conn.execute("ANALYZE")
        creds = {"type": "postgres", **PG, "database": db}
        url = f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{db}"
        names = [f"t{i:04d}" for i in range(n_tables)]
        return alternate(lambda: _introspect(creds, ["bench"]),
                         lambda: reflect_one_by_one(url, "bench", names), repeat,
                         lambda catalog: _check(catalog, n_tables, n_cols), n_tables * n_cols)
    finally:
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def bench_mysql(n_tables: int, n_cols: int, repeat: int,
                floor: bool = False) -> list[tuple[float, float]]:
    db = f"bj_bench_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(**MY, autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db}`")
            cur.execute(f"USE `{db}`")
            for i in range(n_tables):
                for stmt in table_ddl(i, n_cols, mysql=True):
                    cur.execute(stmt)
        creds = {"type": "mysql", **MY, "database": db}
        url = f"mysql+pymysql://{MY['user']}@{MY['host']}:{MY['port']}/{db}"
        names = [f"t{i:04d}" for i in range(n_tables)]
        runs = alternate(lambda: _introspect(creds, None),
                         lambda: reflect_one_by_one(url, None, names), repeat,
                         lambda catalog: _check(catalog, n_tables, n_cols), n_tables * n_cols)
        if floor:
            print_mysql_floor(creds, db, statistics.median(b for _, b in runs))
        return runs
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()


# What every introspection must make the server read (the fields the catalog holds), each
# reduced to one row on the server. SUM(LENGTH(...)) makes the server produce the text
# columns: a bare COUNT(*) lets MariaDB skip opening the tables.
FLOOR_SQL = {
    "COLUMNS": "SELECT COUNT(*), SUM(LENGTH(COLUMN_TYPE)), SUM(LENGTH(COLUMN_DEFAULT)), "
               "SUM(LENGTH(COLUMN_COMMENT)), SUM(ORDINAL_POSITION), SUM(IS_NULLABLE = 'YES') "
               "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s",
    "TABLES": "SELECT COUNT(TABLE_ROWS), SUM(DATA_LENGTH + INDEX_LENGTH), "
              "SUM(LENGTH(TABLE_COMMENT)), SUM(LENGTH(TABLE_TYPE)) "
              "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
    "KEY_COLUMN_USAGE": "SELECT COUNT(*), COUNT(REFERENCED_TABLE_NAME) "
                        "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = %s "
                        "AND (CONSTRAINT_NAME = 'PRIMARY' OR REFERENCED_TABLE_NAME IS NOT NULL)",
}


def _median_s(fn: Callable[[], Any], n: int = 9) -> float:
    times = []
    for _ in range(n):
        gc.collect()
        times.append(timed(fn)[0])
    return statistics.median(times)


def _read_one(cur: Any, sql: str, db: str) -> None:
    cur.execute(sql, (db,))
    cur.fetchall()


def print_mysql_floor(creds: dict[str, Any], db: str, baseline_s: float) -> None:
    """The lower bound described in the module docstring, and the ratio it allows."""
    conn = pymysql.connect(**MY, database=db, autocommit=True)
    try:
        with conn.cursor() as cur:
            server = {name: _median_s(functools.partial(_read_one, cur, sql, db))
                      for name, sql in FLOOR_SQL.items()}
    finally:
        conn.close()
    catalog = _introspect(creds, None)
    doc = catalog.model_dump_json(exclude_defaults=True)  # the smallest text of it
    data = json.loads(doc)
    model = type(catalog)
    assert model.model_validate_json(doc) == model.model_validate(data) == catalog
    del catalog
    # The cheaper of: from the JSON text, or from Python data already decoded (for free here).
    client = min(_median_s(functools.partial(model.model_validate_json, doc)),
                 _median_s(functools.partial(model.model_validate, data)))
    cores = os.cpu_count() or 1
    # pydantic holds the GIL while it validates: the client's part runs on one core at most
    bound = max(client, (sum(server.values()) + client) / cores)
    parts = ", ".join(f"{name} {s * 1000:.1f} ms" for name, s in server.items())
    print(f"  mysql floor: server reads {parts}; catalog built by pydantic "
          f"{client * 1000:.1f} ms; on {cores} cores no introspection takes under "
          f"{bound * 1000:.1f} ms: at most {baseline_s / bound:.1f}x against this run's "
          f"baseline ({baseline_s:.3f} s)", flush=True)


def _introspect(creds: dict[str, Any], schemas: list[str] | None) -> Any:
    with connect(creds) as conn:
        return conn.introspect({"schemas": schemas} if schemas else None)


def _check(catalog: Any, n_tables: int, n_cols: int) -> None:
    """The timing only counts if the catalog is complete."""
    assert [t.name for t in catalog.tables] == [f"t{i:04d}" for i in range(n_tables)]
    assert len(catalog.tables) == n_tables, len(catalog.tables)
    assert sum(len(t.columns) for t in catalog.tables) == n_tables * n_cols
    assert all(t.primary_key == ["id"] and t.comment for t in catalog.tables)
    assert sum(len(t.foreign_keys) for t in catalog.tables) == n_tables - 1


def main() -> None:
    parser = argparse.ArgumentParser(description="introspection benchmark")
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--only", choices=["postgres", "mysql"])
    parser.add_argument("--repeat", type=int, default=1,
                        help="time ours and the baseline N times each, alternately")
    parser.add_argument("--floor", action="store_true",
                        help="MariaDB/MySQL: also measure the lower bound of any introspection")
    args = parser.parse_args()
    benches: dict[str, Callable[[int, int, int], list[tuple[float, float]]]] = {
        "postgres": bench_postgres,
        "mysql": lambda t, c, r: bench_mysql(t, c, r, floor=args.floor),
    }
    failed = False
    for name, fn in benches.items():
        if args.only and name != args.only:
            continue
        runs = fn(args.tables, args.columns, max(1, args.repeat))
        if len(runs) > 1:
            for i, (ours_s, base_s) in enumerate(runs, 1):
                print(f"  {name} run {i}: ours {ours_s:.3f} s, sqlalchemy {base_s:.3f} s, "
                      f"ratio {base_s / ours_s:.1f}x", flush=True)
        ours = statistics.median(o for o, _ in runs)
        base = statistics.median(b for _, b in runs)
        ratio = statistics.median(b / o for o, b in runs)
        ok = ours <= 2.0 and ratio >= 20
        failed |= not ok
        label = f" (median of {len(runs)})" if len(runs) > 1 else ""
        print(f"{name:9s} {args.tables} tables x {args.columns} cols{label}: ours {ours:.3f} s, "
              f"sqlalchemy one-by-one {base:.3f} s, ratio {ratio:.1f}x "
              f"[{'ok' if ok else 'MISSED target <=2 s and >=20x'}]", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
