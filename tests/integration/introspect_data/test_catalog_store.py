"""Catalog snapshots: atomic replacement, staging, and loading speed, on both store tiers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from connectors import Catalog, Column, Schema, Table
from runtime import datasources as ds
from tests.integration.connectors.conftest import unique

pytestmark = pytest.mark.integration


def _catalog(prefix: str, n: int, columns: int = 5) -> Catalog:
    return Catalog(
        warehouse_type="postgres",
        schemas=[Schema(database="db", name="s")],
        tables=[
            Table(database="db", schema="s", name=f"{prefix}{i}", comment=f"{prefix} table",
                  primary_key=["c0"],
                  columns=[Column(name=f"c{j}", data_type="integer", position=j + 1)
                           for j in range(columns)])
            for i in range(n)
        ],
    )


def _source() -> str:
    return ds.add(unique("cat"), {"type": "duckdb", "path": ":memory:"}).id


def test_concurrent_readers_see_the_old_or_the_new_catalog_whole(env: Any) -> None:
    source = _source()
    a, b = _catalog("a", 300), _catalog("b", 500)
    ds.save_catalog(source, a)
    stop = threading.Event()
    seen: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            while not stop.is_set():
                got = ds.load_catalog(source)
                assert got is not None
                seen.append((len(got.tables), "".join(sorted({tb.name[0] for tb in got.tables}))))
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for r in readers:
        r.start()
    try:
        for i in range(8):
            ds.save_catalog(source, b if i % 2 == 0 else a)
            time.sleep(0.01)
    finally:
        stop.set()
        for r in readers:
            r.join(timeout=30)
    assert not errors, errors
    assert seen and set(seen) <= {(300, "a"), (500, "b")}
    final = ds.load_catalog(source)
    assert final is not None and len(final.tables) == 300  # the last save was ``a``


def test_a_staged_snapshot_is_invisible_until_published(env: Any) -> None:
    source = _source()
    assert ds.load_catalog(source) is None and ds.catalog_info(source) is None
    first = ds.save_catalog(source, _catalog("a", 3))
    staged = ds.stage_catalog(source, _catalog("b", 4))
    loaded = ds.load_catalog(source)
    assert loaded is not None and [t.name for t in loaded.tables] == ["a0", "a1", "a2"]
    assert ds.catalog_info(source).snapshot_id == first  # type: ignore[union-attr]
    assert ds.publish_catalog(source, staged) is True
    assert ds.publish_catalog(source, staged) is False  # a replay publishing again: no-op
    loaded = ds.load_catalog(source)
    assert loaded is not None and len(loaded.tables) == 4
    info = ds.catalog_info(source)
    assert info is not None and info.snapshot_id == staged
    assert info.counts == {"databases": 0, "schemas": 1, "tables": 4, "views": 0, "columns": 20}


def test_remove_deletes_the_source_and_its_catalogs(env: Any) -> None:
    source = _source()
    ds.save_catalog(source, _catalog("a", 2))
    ds.remove(source)
    with pytest.raises(ds.DataSourceNotFoundError):
        ds.load_catalog(source)
    with pytest.raises(ds.DataSourceNotFoundError):
        ds.remove(source)


def test_duplicate_name_is_a_clear_error(env: Any) -> None:
    name = unique("dup")
    ds.add(name, {"type": "duckdb", "path": ":memory:"})
    with pytest.raises(ds.DataSourceExistsError, match="already exists"):
        ds.add(name, {"type": "duckdb", "path": ":memory:"})


def test_ten_thousand_tables_load_in_one_query(env: Any) -> None:
    source = _source()
    big = _catalog("t", 10_000, columns=20)
    ds.save_catalog(source, big)
    ds._CACHE.clear()  # measure a cold load
    start = time.perf_counter()
    loaded = ds.load_catalog(source)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    ds.load_catalog(source)
    warm = time.perf_counter() - start
    assert loaded == big
    print(f"10,000 tables × 20 columns: cold load {cold:.2f} s, warm {warm * 1000:.0f} ms")
    # generous bounds for a shared 2-core CI box; typical: ~1.2 s cold, a few ms warm
    assert cold < 8 and warm < 0.5
