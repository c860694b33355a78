"""The demo workspace: a generated orders database, a connection, a configuration, a run."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from egress.client import Client

DEMO_ROWS = 5000
REGIONS = {
    "EU": ["Germany", "France", "Poland", "España", "Sverige"],
    "NA": ["United States", "Canada", "México"],
    "APAC": ["Japan", "Australia", "Singapore"],
    "LATAM": ["Brazil", "Argentina", "Chile"],
}
PRODUCTS = [
    ("Espresso machine", 249.00),
    ("Burr grinder", 129.50),
    ("Milk frother", 39.99),
    ("Pour-over kettle", 59.00),
    ("Coffee beans 1kg", 24.90),
    ("Travel mug", 19.95),
    ("Descaler", 9.49),
]
FIRST = ["Ana", "Bjørn", "Chen", "Dara", "Élodie", "Farid", "Grace", "Hiro", "Inés", "José"]
LAST = ["Kowalski", "Müller", "Nakamura", "O'Brien", "Pérez", "Quinn", "Rossi", "Søren"]
STATUSES = ["placed", "paid", "shipped", "delivered", "refunded"]


def _orders(rows: int, seed: int) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(1, rows + 1):
        region = rnd.choice(list(REGIONS))
        product, price = rnd.choice(PRODUCTS)
        qty = rnd.randint(1, 5)
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        ordered = start + timedelta(minutes=rnd.randint(0, 60 * 24 * 300))
        status = rnd.choice(STATUSES)
        shipped = (
            ordered + timedelta(hours=rnd.randint(4, 96))
            if status in ("shipped", "delivered")
            else None
        )
        yield (
            i,
            f"ORD-{i:06d}",
            f"{first} {last}",
            f"{first.lower()}.{last.lower().replace(chr(39), '')}@example.com",
            region,
            rnd.choice(REGIONS[region]),
            product,
            qty,
            f"{price:.2f}",
            f"{price * qty:.2f}",
            "EUR" if region == "EU" else "USD",
            status,
            rnd.random() < 0.1,
            ordered.strftime("%Y-%m-%d %H:%M:%S"),
            shipped.strftime("%Y-%m-%d %H:%M:%S") if shipped else None,
            rnd.choice([None, None, None, "leave at the door", "gift wrap 🎁", "ring twice"]),
        )


def create_orders_db(path: Path, rows: int = DEMO_ROWS, seed: int = 42) -> Path:
    """A SQLite database with one realistic ``orders`` table, generated deterministically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute(
            """CREATE TABLE orders (
                id INTEGER PRIMARY KEY,
                order_number TEXT NOT NULL,
                customer_name TEXT NOT NULL,
                customer_email TEXT NOT NULL,
                region TEXT NOT NULL,
                country TEXT NOT NULL,
                product TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                unit_price DECIMAL(10,2) NOT NULL,
                amount DECIMAL(12,2) NOT NULL,
                currency TEXT NOT NULL,
                status TEXT NOT NULL,
                is_gift BOOLEAN NOT NULL,
                ordered_at DATETIME NOT NULL,
                shipped_at DATETIME,
                notes TEXT
            )"""
        )
        conn.executemany(f"INSERT INTO orders VALUES ({', '.join('?' * 16)})", _orders(rows, seed))
    return path


def run_demo(client: Client, db_path: Path, downloads: Path) -> dict[str, Any]:
    """Connection → template → submitted configuration → trigger → wait → download."""
    settings = {"path": str(db_path)}
    connections = client.connections.list(limit=1000).data
    connection = next((c for c in connections if c.name == "demo_shop"), None)
    if connection is None:
        connection = client.connections.create("demo_shop", "sqlite", settings)
    elif connection.settings != settings:  # a data dir from before the files roots
        connection = client.connections.update(connection, settings=settings)
    templates = client.templates.list(connection, limit=1000).data
    template = next((t for t in templates if t.name == "main.orders"), None)
    assert template is not None, "the demo database has an orders table"
    configs = client.configurations.list(limit=1000).data
    config = next((c for c in configs if c.name == "daily_orders"), None)
    if config is None:
        config = client.configurations.create(
            name="daily_orders",
            template_id=template.id,
            fields=[
                "id",
                "order_number",
                "customer_name",
                "region",
                "country",
                "product",
                "quantity",
                "amount",
                "currency",
                "status",
                "ordered_at",
            ],
            format="csv",
            destination={"type": "storage", "path": "exports/orders"},
        )
    if config.status == "DRAFT":
        config = client.configurations.submit(config)
    execution = client.configurations.trigger(config).wait(timeout=600)
    result: dict[str, Any] = {"config": config, "execution": execution, "file": None}
    if execution.latest.file:
        downloads.mkdir(parents=True, exist_ok=True)  # a folder: the file keeps its own name
        [result["file"]] = client.download(execution, to=downloads)
    return result
