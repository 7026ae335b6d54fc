"""``search_catalog``'s ranking: a BM25 index over a catalog's tables, built once.

Each table is one document whose fields carry different weights: its name counts most,
then column names, comments, and profiled sample values (so "espresso" finds the products
table through a sample value). The index is an inverted map token -> postings, so a query
touches only the tables that share a token with it: 10,000 tables stay fast, and the
catalog itself never goes into the prompt.
"""

from __future__ import annotations

import heapq
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors import Catalog, Table

__all__ = ["CatalogIndex", "index_for", "tokenize"]

# Field weights: a table named "orders" beats one that only mentions orders in a comment.
W_TABLE, W_SCHEMA, W_COLUMN, W_COMMENT, W_COLUMN_COMMENT, W_VALUE = 3.0, 1.0, 2.0, 1.5, 1.0, 0.7
K1, B = 1.2, 0.75
_SPLIT = re.compile(r"[^0-9a-zA-Z]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_STOP_WORDS = ("a an and are as at by for from how in is it of on or per the to was what which "
               "who with show me my our we give list many much")
_STOP = frozenset(_STOP_WORDS.split())


def _stem(token: str) -> str:
    # Plural folding is enough for identifiers: "orders" ~ "order", "categories" ~ "category".
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    out = []
    for part in _SPLIT.split(_CAMEL.sub(" ", text)):
        low = part.lower()
        if low and low not in _STOP:
            out.append(_stem(low))
    return out


@dataclass
class _Doc:
    table: Table
    length: float
    column_tokens: list[frozenset[str]] = field(default_factory=list)


class CatalogIndex:
    """BM25 over tables; columns ranked within each hit by the query tokens they share."""

    def __init__(self, catalog: Catalog) -> None:
        self.docs: list[_Doc] = []
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for table in catalog.tables:
            self._add(table)
        total = sum(d.length for d in self.docs)
        self.avg_length = total / len(self.docs) if self.docs else 1.0
        n = len(self.docs)
        self.idf = {
            term: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
            for term, p in self.postings.items()
        }
        # The BM25 term weight depends only on (term, doc): compute it once here, so a
        # query is one multiply-add per posting.
        for plist in self.postings.values():
            for i, (doc_id, tf) in enumerate(plist):
                norm = K1 * (1 - B + B * self.docs[doc_id].length / self.avg_length)
                plist[i] = (doc_id, tf * (K1 + 1) / (tf + norm))

    def _add(self, table: Table) -> None:
        weights: dict[str, float] = {}

        def add(text: str | None, weight: float) -> None:
            for tok in tokenize(text or ""):
                weights[tok] = weights.get(tok, 0.0) + weight

        add(table.name, W_TABLE)
        add(table.schema, W_SCHEMA)
        add(table.comment, W_COMMENT)
        column_tokens = []
        for col in table.columns:
            add(col.name, W_COLUMN)
            add(col.comment, W_COLUMN_COMMENT)
            toks = set(tokenize(col.name)) | set(tokenize(col.comment or ""))
            if col.profile is not None:
                for value in col.profile.sample_values:
                    if isinstance(value, str):
                        add(value, W_VALUE)
                        toks |= set(tokenize(value))
            column_tokens.append(frozenset(toks))
        doc_id = len(self.docs)
        self.docs.append(_Doc(table, sum(weights.values()) or 1.0, column_tokens))
        for term, tf in weights.items():
            self.postings.setdefault(term, []).append((doc_id, tf))

    def search(self, query: str, limit: int = 8) -> list[dict[str, Any]]:
        terms = set(tokenize(query))
        scores: dict[int, float] = {}
        for term in terms:
            idf = self.idf.get(term)
            if idf is None:
                continue
            get = scores.get
            for doc_id, weight in self.postings[term]:
                scores[doc_id] = get(doc_id, 0.0) + idf * weight
        best = heapq.nlargest(limit, scores.items(), key=lambda kv: kv[1])
        return [self._hit(self.docs[d], s, terms) for d, s in best]

    def _hit(self, doc: _Doc, score: float, terms: set[str]) -> dict[str, Any]:
        t = doc.table
        matched = [i for i, toks in enumerate(doc.column_tokens) if toks & terms]
        keys = {*t.primary_key, *(c for fk in t.foreign_keys for c in fk.columns)}
        # Matching columns first, then keys (for joins), then the rest, capped for the prompt.
        order = matched + [i for i, c in enumerate(t.columns) if c.name in keys and i not in
                           matched]
        order += [i for i in range(len(t.columns)) if i not in order]
        return {
            "table": t.qualified_name,
            "kind": t.kind,
            "comment": t.comment,
            "row_count": t.row_count,
            "score": round(score, 3),
            "columns": [_column(t, i, i in matched) for i in order[:20]],
            "more_columns": max(0, len(t.columns) - 20),
            "joins": [
                f"({', '.join(fk.columns)}) -> {fk.referenced_schema}.{fk.referenced_table}"
                f"({', '.join(fk.referenced_columns)})"
                for fk in t.foreign_keys
            ],
        }


def _column(table: Table, i: int, matched: bool) -> dict[str, Any]:
    col = table.columns[i]
    out: dict[str, Any] = {"name": col.name, "type": col.data_type}
    if col.comment:
        out["comment"] = col.comment
    if matched:
        out["matched"] = True
    if col.profile is not None and col.profile.sample_values:
        out["samples"] = col.profile.sample_values[:5]
    return out


_CACHE: OrderedDict[tuple[str, str], CatalogIndex] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 16


def index_for(source_key: str, catalog: Catalog) -> CatalogIndex:
    """The index for this catalog version, built on first use and kept per process (an
    LRU of 16): every turn and every run on the same catalog reuses it."""
    key = (source_key, catalog.introspected_at.isoformat())
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    index = CatalogIndex(catalog)
    with _CACHE_LOCK:
        _CACHE[key] = index
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index


def merge_hits(hits: Iterable[tuple[str, dict[str, Any]]], limit: int) -> list[dict[str, Any]]:
    """Hits from several sources, best first, each labelled with its source."""
    ranked = sorted(hits, key=lambda sh: sh[1]["score"], reverse=True)[:limit]
    return [{"data_source": source, **hit} for source, hit in ranked]
