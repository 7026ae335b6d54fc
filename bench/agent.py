"""Agent benchmarks: the agent's own overhead per step, and search_catalog at 10,000 tables.

    .venv/bin/python -m bench.agent

Overhead per step = wall time of a whole agent run (happy path: 7 model turns against the
bundled sample warehouse) minus the warehouse's query time, divided by the turns. The model
answers instantly through the recorded transport, so what remains is ours plus the SDK's
request building and parsing. Runs outside a task run (no step records), embedded store.
Targets: <= 20 ms/step; search p95 <= 50 ms.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from connectors import Catalog, Column, ColumnProfile, Table


def _overhead(runs: int = 15) -> dict[str, float]:
    import runtime
    from agent import AgentRequest, run_analyst
    from agent.model import ModelClient
    from agent.settings import AgentSettings
    from agent.sources import SourceSessions
    from agent.testing import RecordedAnthropic
    from tests.agent import scenarios as sc

    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    runtime.configure(data_dir=str(tmp), database_url=f"sqlite:///{tmp / 'store.db'}")
    query_ms = [0.0]
    original = SourceSessions.query

    def timed(self: Any, *a: Any, **k: Any) -> Any:
        result = original(self, *a, **k)
        query_ms[0] += result.elapsed_ms
        return result

    SourceSessions.query = timed  # type: ignore[method-assign]
    settings = AgentSettings()
    per_step = []
    for i in range(runs + 1):
        fake = RecordedAnthropic.write(tmp / f"s{i}.json", sc.happy_path())
        query_ms[0] = 0.0
        start = time.perf_counter()
        out = run_analyst(AgentRequest(session_id=str(uuid.uuid4()), query="orders?",
                                       data_sources=["sample"]),
                          run_id=f"bench{i}", settings=settings,
                          model=ModelClient(settings, fake.client()))
        wall = (time.perf_counter() - start) * 1000
        assert out["success"], out
        if i:  # the first run builds the sample, its catalog and the search index
            per_step.append((wall - query_ms[0]) / 7)
    SourceSessions.query = original  # type: ignore[method-assign]
    return {"median_ms": statistics.median(per_step), "max_ms": max(per_step)}


def synthetic_catalog(n_tables: int = 10_000, seed: int = 7) -> Catalog:
    rng = random.Random(seed)
    words = ["order", "customer", "invoice", "product", "shipment", "payment", "refund",
             "account", "campaign", "session", "event", "user", "store", "region", "price",
             "inventory", "supplier", "contract", "ticket", "subscription", "revenue", "churn",
             "signup", "click", "device", "country", "currency", "tax", "discount", "channel"]
    # real warehouses name things from a wide vocabulary: 30 stems x 12 domain prefixes
    prefixes = ["fin", "ops", "mkt", "crm", "erp", "web", "app", "hr", "log", "sup", "pay", "geo"]
    words = [f"{p}{w}" for p in prefixes for w in words] + words
    tables = []
    for t in range(n_tables):
        name = f"{rng.choice(words)}_{rng.choice(words)}_{t}"
        cols = [Column(name=f"{rng.choice(words)}_{k}", data_type=rng.choice(
                    ["INTEGER", "VARCHAR", "DATE", "DECIMAL(10,2)"]), position=k + 1,
                       comment=f"The {rng.choice(words)} {rng.choice(words)}",
                       profile=ColumnProfile(sample_size=100, distinct_count=5, null_count=0,
                                             sample_values=[rng.choice(words) for _ in range(3)]))
                for k in range(rng.randint(5, 25))]
        tables.append(Table(database="wh", schema=f"s{t % 40}", name=name, columns=cols,
                            comment=f"{rng.choice(words)} facts by {rng.choice(words)}"))
    return Catalog(warehouse_type="postgres", tables=tables)


def _search(queries: int = 300) -> dict[str, float]:
    from agent.search import CatalogIndex

    catalog = synthetic_catalog()
    start = time.perf_counter()
    index = CatalogIndex(catalog)
    build_ms = (time.perf_counter() - start) * 1000
    rng = random.Random(1)
    questions = ["monthly revenue by region and channel", "churned subscription customers",
                 "refund rate per product", "orders shipped late by supplier",
                 "average discount by currency", "signups per campaign per device"]
    times = []
    for _ in range(queries):
        q = rng.choice(questions)
        t0 = time.perf_counter()
        index.search(q, 8)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"build_ms": build_ms, "p50_ms": times[len(times) // 2],
            "p95_ms": times[int(len(times) * 0.95)], "max_ms": times[-1]}


def main() -> None:
    s = _search()
    print(f"search_catalog, 10,000 tables: index build {s['build_ms']:.0f} ms (once per "
          f"catalog), query p50 {s['p50_ms']:.2f} ms, p95 {s['p95_ms']:.2f} ms "
          f"(target <= 50), max {s['max_ms']:.2f} ms")
    o = _overhead()
    print(f"agent overhead per step (excl. model and warehouse time): median "
          f"{o['median_ms']:.2f} ms, max {o['max_ms']:.2f} ms (target <= 20)")


if __name__ == "__main__":
    main()
