"""The bundled sample warehouse: a small shop in a DuckDB file, built on first use.

Same seed, same file contents: customers, products, orders and order_items over the
three calendar years 2022-2024 (fixed dates, so the data does not shift with the clock),
with primary and foreign keys, comments on every table and column, and a
``monthly_revenue`` view. Building it takes well under a second.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["SAMPLE_SEED", "ensure_sample_warehouse", "sample_credentials"]

SAMPLE_SEED = 20240601
N_CUSTOMERS = 600
N_ORDERS = 4000
START, END = dt.date(2022, 1, 1), dt.date(2024, 12, 31)

_SCHEMA = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    email VARCHAR NOT NULL,
    country VARCHAR(2) NOT NULL,
    segment VARCHAR NOT NULL,
    signup_date DATE NOT NULL
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL,
    category VARCHAR NOT NULL,
    unit_price DECIMAL(10, 2) NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (customer_id),
    order_date DATE NOT NULL,
    status VARCHAR NOT NULL,
    channel VARCHAR NOT NULL
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (order_id),
    line_number INTEGER NOT NULL,
    product_id INTEGER NOT NULL REFERENCES products (product_id),
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(10, 2) NOT NULL,
    discount DECIMAL(4, 2) NOT NULL DEFAULT 0,
    PRIMARY KEY (order_id, line_number)
);
CREATE VIEW monthly_revenue AS
SELECT date_trunc('month', o.order_date)::DATE AS month,
       count(DISTINCT o.order_id) AS orders,
       sum(i.quantity * i.unit_price * (1 - i.discount))::DECIMAL(14, 2) AS revenue
FROM orders o JOIN order_items i USING (order_id)
WHERE o.status <> 'cancelled'
GROUP BY 1;
"""

_COMMENTS = {
    "customers": ("People and companies who placed at least one order or signed up.", {
        "customer_id": "Surrogate key.",
        "name": "Full name as entered at sign-up.",
        "email": "Contact email; unique per customer.",
        "country": "ISO 3166-1 alpha-2 country code.",
        "segment": "consumer, small_business or enterprise.",
        "signup_date": "Day the account was created.",
    }),
    "products": ("The catalog of things we sell.", {
        "product_id": "Surrogate key.",
        "name": "Display name.",
        "category": "Product family used in reporting.",
        "unit_price": "Current list price in USD.",
        "active": "False once the product is discontinued.",
    }),
    "orders": ("One row per checkout.", {
        "order_id": "Surrogate key.",
        "customer_id": "Who placed the order.",
        "order_date": "Day the order was placed (UTC).",
        "status": "placed, shipped, delivered, returned or cancelled.",
        "channel": "web, mobile or retail.",
    }),
    "order_items": ("Order lines: one product and quantity per line.", {
        "order_id": "The order this line belongs to.",
        "line_number": "1-based position within the order.",
        "product_id": "What was bought.",
        "quantity": "Units bought.",
        "unit_price": "Price per unit at the time of the order, USD.",
        "discount": "Fraction taken off the line, 0 to 0.30.",
    }),
}

_FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Edsger", "Margaret", "Dennis", "Frances",
          "Ken", "Radia", "Donald", "Sophie", "Tim", "Katherine", "John", "Hedy", "Guido"]
_LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Dijkstra", "Hamilton",
         "Ritchie", "Allen", "Thompson", "Perlman", "Knuth", "Wilson", "Berners-Lee",
         "Johnson", "McCarthy", "Lamarr", "van Rossum"]
_COUNTRIES = ["US", "US", "US", "GB", "DE", "FR", "CA", "NL", "SE", "JP", "AU", "BR"]
_SEGMENTS = ["consumer"] * 6 + ["small_business"] * 3 + ["enterprise"]
_CATEGORIES = {
    "Coffee": ["Espresso Beans", "House Blend", "Decaf Roast", "Cold Brew Pack", "Single Origin"],
    "Equipment": ["Pour-over Kit", "Burr Grinder", "Kettle", "French Press", "Scale"],
    "Tea": ["Green Tea", "Earl Grey", "Chamomile", "Oolong", "Matcha"],
    "Merch": ["Mug", "Tote Bag", "T-shirt", "Sticker Pack", "Travel Cup"],
}
_STATUSES = ["delivered"] * 14 + ["shipped", "placed", "returned", "cancelled"]
_CHANNELS = ["web"] * 5 + ["mobile"] * 3 + ["retail"] * 2


def default_path() -> Path:
    """Where the sample lives unless told otherwise (``BUSTER_SAMPLE_WAREHOUSE`` wins)."""
    env = os.environ.get("BUSTER_SAMPLE_WAREHOUSE")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "buster-jobs" / "sample_warehouse.duckdb"


def ensure_sample_warehouse(path: str | os.PathLike[str] | None = None) -> Path:
    """Build the sample warehouse at ``path`` unless the file exists; return the path.

    The file is built under a temporary name and renamed, so a reader never opens a
    half-written file and two processes racing to build it both end with a whole one.
    """
    target = Path(path) if path is not None else default_path()
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".sample-", suffix=".duckdb", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # DuckDB wants to create the file itself
    try:
        _build(Path(tmp))
        os.replace(tmp, target)
    finally:
        for leftover in (tmp, tmp + ".wal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return target


def sample_credentials(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Credentials for :func:`connectors.connect` that open (and if needed build) it."""
    return {"type": "duckdb", "path": str(path or default_path()), "sample": True}


def _build(path: Path) -> None:
    import duckdb  # the sample needs DuckDB only when it is built

    rng = random.Random(SAMPLE_SEED)
    data = _generate(rng)
    conn = duckdb.connect(str(path))
    try:
        conn.execute(_SCHEMA)
        for table, columns in data.items():
            names = list(columns)
            select = ", ".join(f"unnest(${i + 1})" for i in range(len(names)))
            conn.execute(
                f"INSERT INTO {table} ({', '.join(names)}) SELECT {select}",
                [columns[n] for n in names],
            )
        for table, (table_comment, column_comments) in _COMMENTS.items():
            # COMMENT ON takes no parameters; the texts are ours and quoted here.
            conn.execute(f"COMMENT ON TABLE {table} IS {_literal(table_comment)}")
            for column, text in column_comments.items():
                conn.execute(f"COMMENT ON COLUMN {table}.{column} IS {_literal(text)}")
        conn.execute(
            "COMMENT ON VIEW monthly_revenue IS "
            "'Revenue and order count per calendar month, cancelled orders excluded.'"
        )
        conn.execute("CHECKPOINT")
    finally:
        conn.close()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _generate(rng: random.Random) -> dict[str, dict[str, list[Any]]]:
    span = (END - START).days
    customers: dict[str, list[Any]] = {k: [] for k in
                                       ("customer_id", "name", "email", "country", "segment",
                                        "signup_date")}
    for cid in range(1, N_CUSTOMERS + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        customers["customer_id"].append(cid)
        customers["name"].append(f"{first} {last}")
        customers["email"].append(f"{first}.{last}.{cid}@example.com".lower().replace(" ", ""))
        customers["country"].append(rng.choice(_COUNTRIES))
        customers["segment"].append(rng.choice(_SEGMENTS))
        customers["signup_date"].append(START + dt.timedelta(days=rng.randrange(span - 30)))

    products: dict[str, list[Any]] = {k: [] for k in
                                      ("product_id", "name", "category", "unit_price", "active")}
    prices: list[Decimal] = []
    for category, names in _CATEGORIES.items():
        for name in names:
            for size in ("", " (Large)"):
                price = Decimal(rng.randrange(400, 12000)) / 100
                products["product_id"].append(len(prices) + 1)
                products["name"].append(name + size)
                products["category"].append(category)
                products["unit_price"].append(price)
                products["active"].append(rng.random() > 0.1)
                prices.append(price)

    orders: dict[str, list[Any]] = {k: [] for k in
                                    ("order_id", "customer_id", "order_date", "status",
                                     "channel")}
    items: dict[str, list[Any]] = {k: [] for k in
                                   ("order_id", "line_number", "product_id", "quantity",
                                    "unit_price", "discount")}
    for oid in range(1, N_ORDERS + 1):
        cid = rng.randint(1, N_CUSTOMERS)
        signup = customers["signup_date"][cid - 1]
        # Orders grow over time: a square-root skew puts more of them in later months.
        offset = int((rng.random() ** 0.7) * (END - signup).days)
        orders["order_id"].append(oid)
        orders["customer_id"].append(cid)
        orders["order_date"].append(signup + dt.timedelta(days=offset))
        orders["status"].append(rng.choice(_STATUSES))
        orders["channel"].append(rng.choice(_CHANNELS))
        for line in range(1, rng.choice((1, 1, 2, 2, 3, 4)) + 1):
            pid = rng.randint(1, len(prices))
            items["order_id"].append(oid)
            items["line_number"].append(line)
            items["product_id"].append(pid)
            items["quantity"].append(rng.choice((1, 1, 1, 2, 2, 3, 5)))
            items["unit_price"].append(prices[pid - 1])
            items["discount"].append(Decimal(rng.choice((0, 0, 0, 5, 10, 15, 30))) / 100)
    return {"customers": customers, "products": products, "orders": orders,
            "order_items": items}
