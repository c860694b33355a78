"""SQL templates over HTTP: an admin creates one over a JOIN, configures, triggers with filters
and downloads exactly the expected rows; a non-admin gets 403; bad queries are 422 at query."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, wait_for_status
from tests.e2e.helpers import API, CONFIGS, DONE, api, configuration, problem
from tests.support.identity import create_token

REGIONS = ["EU", "NA", "APAC"]
CUSTOMERS = [(i, f"customer {i}", REGIONS[i % 3]) for i in range(1, 7)]
# (id, customer_id, amount, ordered_at)
ORDERS = [
    (i, i % 6 + 1, f"{i * 7 % 90}.25", f"2026-01-{1 + i % 28:02d} 10:00:00") for i in range(1, 81)
]
QUERY = (
    "SELECT o.id, c.name AS customer, c.region, o.amount, o.amount * 2 AS doubled, o.ordered_at\n"
    "FROM orders AS o JOIN customers AS c ON c.id = o.customer_id"
)


@pytest.fixture(scope="module")
def member(server: Server) -> Iterator[httpx.Client]:
    """A client with an editor token of the same workspace."""
    with api(server, create_token(server, "default", "editor")) as client:
        yield client


@pytest.fixture(scope="module")
def connection(http: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("shop") / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, region TEXT)")
        conn.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER,"
            " amount DECIMAL(10,2), ordered_at DATETIME)"
        )
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?)", CUSTOMERS)
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", ORDERS)
    r = http.post(
        f"{API}/connections",
        json={"name": "shop", "type": "sqlite", "settings": {"path": str(path)}},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _create(client: httpx.Client, connection: str, name: str, **body: Any) -> httpx.Response:
    return client.post(f"{API}/templates", json={"connectionId": connection, "name": name, **body})


def test_an_admin_extracts_a_query_template(http: httpx.Client, connection: str) -> None:
    r = _create(
        http,
        connection,
        "eu_orders",
        query=QUERY + ";",
        primaryKey=["id"],
        cursorField="id",
        dateField="ordered_at",
    )
    assert r.status_code == 201, r.text
    tpl = r.json()
    assert (tpl["kind"], tpl["table"], tpl["query"]) == ("custom", None, QUERY)
    assert [(f["name"], f["type"]) for f in tpl["fields"]] == [
        ("id", "int64"),
        ("customer", "string"),
        ("region", "string"),
        ("amount", "decimal(10,2)"),
        ("doubled", "float64"),
        ("ordered_at", "timestamp"),
    ]
    assert (tpl["primaryKey"], tpl["cursorField"], tpl["dateField"]) == (
        ["id"],
        "id",
        "ordered_at",
    )
    assert http.get(f"{API}/templates/{tpl['id']}").json() == tpl

    # The filter and dates are the configuration's: an incremental run narrowed by its
    # trigger's own would keep the watermark (README "Run options").
    cfg = configuration(
        http,
        tpl["id"],
        "eu_orders",
        fields=["id", "customer", "doubled"],
        filter="region = 'EU' AND doubled > 50",
        dateFrom="2026-01-05",
        dateTo="2026-01-20",
    )
    r = http.post(
        f"{CONFIGS}/{cfg}/executions",
        json={
            "extractOnlyNew": True,
            # A query waits out a safety lag (no row versions to read); none is needed here.
            "incrementalLag": "0s",
        },
    )
    assert r.status_code == 202, r.text
    details = wait_for_status(http, cfg, r.json()["id"], DONE)
    assert details["latestStatus"] == "COMPLETED", details
    text = http.get(details["runs"][0]["file"]["downloadUrl"]).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "customer", "doubled"]
    region = {cid: reg for cid, _, reg in CUSTOMERS}
    expected = [
        (i, f"customer {cid}", Decimal(amount) * 2)
        for i, cid, amount, at in ORDERS
        if region[cid] == "EU"
        and Decimal(amount) * 2 > 50
        and "2026-01-05" <= at[:10] <= "2026-01-20"
    ]
    assert expected
    assert [(int(i), name, Decimal(d)) for i, name, d in rows[1:]] == expected
    assert details["runs"][0]["recordCount"] == len(expected)
    # The incremental window closed at the largest cursor value the query returns.
    assert http.get(f"{CONFIGS}/{cfg}").json()["watermark"] == 80


def test_a_non_admin_may_not_create_a_sql_template(
    member: httpx.Client, http: httpx.Client, connection: str
) -> None:
    body = problem(_create(member, connection, "mine", query="SELECT id FROM orders"), 403)
    assert (
        body["detail"]
        == "creating SQL templates needs the admin role; this token's role is 'editor'"
    )
    # Table templates stay open to every role, and everyone reads SQL templates.
    assert _create(member, connection, "orders_too", table="main.orders").status_code == 201
    shared = _create(http, connection, "shared", query="SELECT id FROM orders")
    assert shared.status_code == 201, shared.text
    seen = member.get(f"{API}/templates/{shared.json()['id']}")
    assert (seen.status_code, seen.json()["query"]) == (200, "SELECT id FROM orders")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("CREATE TABLE stolen AS SELECT * FROM orders", "found CREATE"),
        ("DROP TABLE orders", "found DROP"),
        ("SELECT 1; SELECT 2", "single statement"),
        ("DELETE FROM orders", "found DELETE"),
        ("SELECT * FROM orders FOR UPDATE", "locking clause"),
        ("SELECT id FROM no_such_table", "no such table: no_such_table"),
        ("SELECT id, nope FROM orders", "no such column: nope"),
        ("SELECT FROM WHERE", "is not valid SQL"),
        ("", "is empty"),
        ("x" * 100_001, "the limit is 100000"),
    ],
)
def test_bad_queries_are_422_at_query(
    http: httpx.Client, connection: str, query: str, message: str
) -> None:
    body = problem(_create(http, connection, "bad", query=query), 422, "query")
    assert message in body["detail"]


def test_table_or_query_exactly_one(http: httpx.Client, connection: str) -> None:
    both = problem(
        _create(http, connection, "both", table="main.orders", query="SELECT 1 AS a"), 422
    )
    assert {e["field"] for e in both["errors"]} == {"table", "query"}
    neither = problem(_create(http, connection, "neither"), 422)
    assert {e["field"] for e in neither["errors"]} == {"table", "query"}
    problem(
        _create(http, connection, "narrowed", query="SELECT id FROM orders", fields=["id"]),
        422,
        "fields",
    )
    problem(
        _create(http, connection, "keyed", query="SELECT id FROM orders", dateField="at"),
        422,
        "dateField",
    )
    typed = {"id": "string"}
    problem(
        _create(http, connection, "typed", query="SELECT id FROM orders", columnTypes=typed),
        422,
        "columnTypes",
    )


def test_a_files_connection_takes_no_sql(http: httpx.Client, tmp_path: Path) -> None:
    r = http.post(
        f"{API}/connections",
        json={"name": "drop", "type": "files", "settings": {"url": tmp_path.as_uri()}},
    )
    assert r.status_code == 201, r.text
    body = problem(_create(http, r.json()["id"], "sql", query="SELECT 1 AS a"), 422)
    assert body["errors"][0]["field"] == "connectionId"


def test_an_unknown_connection_is_422(http: httpx.Client) -> None:
    problem(_create(http, "nope", "sql", query="SELECT 1 AS a"), 422, "connectionId")
