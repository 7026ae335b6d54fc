"""Catalog models, filters, and SQL text for branches the stands cannot reach."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connectors.catalog import Catalog, Column, IntrospectionFilters, Table
from connectors.redshift import build_tables, catalog_sql, redshift_sample_sql


def test_filters_match_globs_exact_names_and_qualified_tables() -> None:
    f = IntrospectionFilters(schemas=["sales", "mart_*"], tables=["ORD*", "sales.customers"],
                             exclude_tables=["*_tmp"])
    assert f.match_schema("SALES") and f.match_schema("mart_eu") and not f.match_schema("x")
    assert f.match_table("sales", "orders") and f.match_table("sales", "customers")
    assert not f.match_table("other", "customers")  # qualified pattern names the schema
    assert not f.match_table("sales", "orders_tmp")
    assert f.exact_names("schemas") is None
    assert IntrospectionFilters(databases=["a", "b"]).exact_names("databases") == ["a", "b"]
    assert IntrospectionFilters().match_table("any", "thing")


def test_empty_filter_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="omit the filter"):
        IntrospectionFilters(tables=[])


def test_catalog_round_trips_and_counts() -> None:
    t = Table(database="d", schema="s", name="t", columns=[
        Column(name="id", data_type="int", position=1)], primary_key=["id"])
    v = Table(database="d", schema="s", name="v", kind="materialized_view")
    cat = Catalog(warehouse_type="postgres", tables=[t, v])
    again = Catalog.model_validate_json(cat.model_dump_json())
    assert again == cat and again.tables[0].schema == "s"
    assert cat.counts() == {"databases": 0, "schemas": 0, "tables": 1, "views": 1,
                            "columns": 1}
    assert cat.table("s", "t").column("id").position == 1
    with pytest.raises(KeyError):
        cat.table("s", "nope")


def test_redshift_catalog_sql_has_one_placeholder_per_schema() -> None:
    sql = catalog_sql("table_info", 3)
    assert "svv_table_info" in sql and sql.count("%s") == 3
    assert catalog_sql("attributes", 2).count("%s") == 4  # the list is used twice
    assert "WITH ORDINALITY" not in "".join(
        catalog_sql(k, 1) for k in ("tables", "columns", "comments", "constraints"))


def test_redshift_svv_table_info_rows_become_sizes() -> None:
    tables = [["s", "big", "BASE TABLE", 5.0, None], ["s", "empty", "BASE TABLE", -1, None],
              ["s", "v", "VIEW", 0, "select 1"]]
    columns = [["s", "big", "id", 1, "integer", "NO", None, None, 32, 0]]
    stats = {("s", "big"): (123, 7 * 1024 * 1024)}
    out = {t.name: t for t in build_tables("db", tables, stats, columns, [], [], [])}
    assert (out["big"].row_count, out["big"].size_bytes) == (123, 7 * 1024 * 1024)
    assert (out["empty"].row_count, out["empty"].size_bytes) == (0, 0)
    assert (out["v"].row_count, out["v"].view_definition) == (None, "select 1")
    assert out["big"].column("id").precision is None  # only numeric has precision
    # Without svv_table_info: the reltuples estimate, no size.
    fallback = {t.name: t for t in build_tables("db", tables, None, columns, [], [], [])}
    assert (fallback["big"].row_count, fallback["big"].size_bytes) == (5, None)
    assert fallback["empty"].row_count is None


def test_redshift_keys_from_attnum_arrays_text_or_list() -> None:
    constraints = [["s", "b", "b_pk", "p", "{1,2}", None, None, None],
                   ["s", "b", "b_fk", "f", [3], "s", "a", [1]]]
    attributes = [["s", "b", 1, "x"], ["s", "b", 2, "y"], ["s", "b", 3, "a_id"],
                  ["s", "a", 1, "id"]]
    tables = [["s", "b", "BASE TABLE", 0, None]]
    [b] = build_tables("db", tables, None, [], [], constraints, attributes)
    assert b.primary_key == ["x", "y"]
    [fk] = b.foreign_keys
    assert (fk.columns, fk.referenced_table, fk.referenced_columns) == (["a_id"], "a", ["id"])


def test_redshift_sample_sql_quotes_and_bounds() -> None:
    big = Table(database="d", schema='we"ird', name="t", row_count=1_000_000)
    sql = redshift_sample_sql(big, 1000)
    assert sql.startswith('SELECT * FROM "we""ird"."t" WHERE RANDOM() < 0.0015')
    assert sql.endswith("LIMIT 1000")
    view = Table(database="d", schema="s", name="v", kind="view", row_count=None)
    assert redshift_sample_sql(view, 10) == 'SELECT * FROM "s"."v" LIMIT 10'
