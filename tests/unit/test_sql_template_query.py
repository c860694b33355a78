"""SQL templates' queries: a corpus of good and bad ones per dialect, and how plans wrap them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.options import Window
from egress.domain.plan import ReadPlan, plan_from_snapshot
from egress.domain.spec import ExecutionSpec
from egress.query.custom import MAX_LENGTH, check_query, parse_query, probe_statement
from egress.query.select import max_statement, select_statement

DIALECTS = ["postgres", "mysql", "sqlite"]

GOOD = [
    "SELECT id, region FROM orders",
    "select * from orders",
    "SELECT o.id, c.name AS customer, o.amount * 2 AS doubled "
    "FROM orders AS o JOIN customers AS c ON c.id = o.customer_id",
    "SELECT o.id FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL",
    "SELECT region, count(*) AS n, sum(amount) AS total FROM orders GROUP BY region HAVING "
    "count(*) > 1",
    "WITH big AS (SELECT * FROM orders WHERE amount > 100) SELECT id FROM big",
    "SELECT id FROM orders UNION ALL SELECT id FROM archived_orders",
    "SELECT id FROM orders UNION SELECT id FROM archived_orders ORDER BY id",
    "SELECT id FROM orders WHERE id IN (SELECT order_id FROM refunds)",
    "SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM refunds r WHERE r.order_id = orders.id)",
    "SELECT id, CASE WHEN amount > 100 THEN 'big' ELSE 'small' END AS size FROM orders",
    "SELECT id, row_number() OVER (PARTITION BY region ORDER BY amount DESC) AS rank FROM orders",
    "SELECT DISTINCT region FROM orders",
    "SELECT id FROM orders ORDER BY id LIMIT 10",
    "SELECT id, 'a;b' AS text_with_semicolon FROM orders",
    "SELECT id, 'DELETE FROM orders' AS harmless_text FROM orders",
    "SELECT id FROM orders;",
    "SELECT id FROM orders ; ",
    "SELECT id FROM orders -- the open ones",
    "SELECT id /* the key */ FROM orders",
    "(SELECT id FROM orders)",
]
# The good queries written with a terminator, as they are stored.
TERMINATED = {
    "SELECT id FROM orders;": "SELECT id FROM orders",
    "SELECT id FROM orders ; ": "SELECT id FROM orders",
}

# (query, the part of the message that points at the problem)
BAD = [
    ("", "is empty"),
    ("   ", "is empty"),
    (";", "is empty"),
    ("DELETE FROM orders", "must be a SELECT; found DELETE"),
    ("DELETE FROM orders WHERE id = 1", "found DELETE (in 'DELETE FROM orders WHERE id = 1')"),
    ("UPDATE orders SET amount = 0", "found UPDATE"),
    ("INSERT INTO orders (id) VALUES (1)", "found INSERT"),
    ("INSERT INTO orders SELECT * FROM orders", "found INSERT"),
    ("CREATE TABLE copy AS SELECT * FROM orders", "found CREATE"),
    ("CREATE VIEW v AS SELECT 1", "found CREATE"),
    ("DROP TABLE orders", "found DROP"),
    ("ALTER TABLE orders ADD COLUMN x int", "found ALTER"),
    ("TRUNCATE TABLE orders", "found TRUNCATE"),
    ("GRANT SELECT ON orders TO someone", "found GRANT"),
    ("VALUES (1)", "found VALUES"),
    ("SELECT 1; SELECT 2", "single statement"),
    ("SELECT 1; DROP TABLE orders", "single statement"),
    ("SELECT 1;; SELECT 2", "single statement"),
    ("SELECT * FROM orders FOR UPDATE", "locking clause"),
    ("SELECT * FROM orders FOR SHARE", "locking clause"),
    ("SELECT * INTO orders_copy FROM orders", "SELECT … INTO is not allowed"),
    ("SELECT id FROM", "is not valid SQL"),
    ("SELECT 'unterminated", "is not valid SQL"),
    ("SELECT id FROM orders WHERE (", "is not valid SQL"),
    ("x" * (MAX_LENGTH + 1), f"the limit is {MAX_LENGTH}"),
]

BAD_BY_DIALECT = [
    ("postgres", "WITH gone AS (DELETE FROM orders RETURNING *) SELECT * FROM gone", "DELETE"),
    ("postgres", "WITH n AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM n", "INSERT"),
    ("postgres", "WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u", "UPDATE"),
    ("postgres", "SELECT * FROM orders FOR NO KEY UPDATE SKIP LOCKED", "locking clause"),
    ("postgres", "COPY orders TO STDOUT", "found COPY"),
    ("postgres", "SET search_path = evil", "found SET"),
    ("postgres", "CALL refresh_orders()", "found CALL"),
    ("postgres", "EXPLAIN SELECT 1", "found EXPLAIN"),
    ("postgres", "LOCK TABLE orders", "found LOCK"),
    ("postgres", "BEGIN", "must be a SELECT"),
    ("mysql", "SELECT * FROM orders LOCK IN SHARE MODE", "locking clause"),
    ("mysql", "SELECT id INTO @x FROM orders", "SELECT … INTO"),
    ("mysql", "SELECT * FROM orders INTO OUTFILE '/tmp/x'", "is not valid SQL"),
    ("mysql", "REPLACE INTO orders VALUES (1)", "must be a SELECT"),
    ("mysql", "SET @a = 1", "found SET"),
    ("mysql", "USE other", "found USE"),
    ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x", "found ATTACH"),
    ("sqlite", "PRAGMA writable_schema = 1", "found PRAGMA"),
    ("sqlite", "VACUUM", "must be a SELECT"),
]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("query", GOOD)
def test_good_queries_pass(query: str, dialect: str) -> None:
    """Stored as written, only a trailing terminator (and the space around it) dropped, and
    still the same statement."""
    stored = check_query(query, dialect)
    assert stored == TERMINATED.get(query, query)
    assert parse_query(stored, dialect) == parse_query(query, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("query", "message"), BAD)
def test_bad_queries_are_refused_at_query(query: str, message: str, dialect: str) -> None:
    with pytest.raises(Invalid) as err:
        check_query(query, dialect)
    assert message in err.value.detail
    assert [e.loc for e in err.value.errors] == [("body", "query")]


@pytest.mark.parametrize(("dialect", "query", "message"), BAD_BY_DIALECT)
def test_dialect_specific_bad_queries(dialect: str, query: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        check_query(query, dialect)
    assert message in err.value.detail


def test_a_parse_error_points_at_the_token() -> None:
    with pytest.raises(Invalid) as err:
        check_query("SELECT id FROM WHERE", "postgres")
    assert "line 1, column 20 near 'WHERE'" in err.value.detail


def test_a_trailing_terminator_is_dropped_and_the_rest_kept() -> None:
    assert check_query("  SELECT 1 AS a ;  ", "postgres") == "SELECT 1 AS a"
    assert check_query("SELECT 1 AS a -- note", "postgres") == "SELECT 1 AS a -- note"


def test_too_deep_to_parse_or_render_is_refused_not_crashed() -> None:
    for query in (
        "SELECT " + "(" * 3000 + "1" + ")" * 3000,
        "SELECT * FROM " + "(SELECT * FROM " * 150 + "t" + ") AS x" * 150,
    ):
        with pytest.raises(Invalid, match="nests too deeply"):
            check_query(query, "postgres")


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("SELECT FROM WHERE ();'\"`-*/,.1aq=<>$:%\\\n")),
        max_size=80,
    ),
    st.sampled_from(DIALECTS),
)
def test_arbitrary_text_is_accepted_or_refused_never_crashes(text: str, dialect: str) -> None:
    try:
        check_query(text, dialect)
    except Invalid as err:
        assert [e.loc for e in err.errors] == [("body", "query")]


def test_the_probe_wraps_the_rendered_tree_without_comments() -> None:
    sql = probe_statement("SELECT id /* x */ FROM orders -- */ DROP TABLE orders", "postgres")
    assert sql == 'SELECT * FROM (SELECT id FROM orders) AS "q" LIMIT 0'
    assert probe_statement("SELECT `id` FROM orders", "mysql") == (
        "SELECT * FROM (SELECT `id` FROM orders) AS `q` LIMIT 0"
    )


FIELDS = [ColumnInfo("id", "int64"), ColumnInfo("region", "string"), ColumnInfo("at", "timestamp")]


def test_a_plan_with_a_query_selects_from_it_with_bound_filters() -> None:
    snapshot = {
        "template": {
            "sourceTable": "",
            "query": "SELECT o.id, c.region, o.at FROM orders o JOIN customers c ON c.id = o.cid",
            "fields": [f.as_dict() for f in FIELDS],
            "dateField": "at",
        },
        "configuration": {"fields": ["id", "region"]},
        "options": {"whereClause": "region = 'EU'", "dateFrom": "2026-01-01"},
    }
    plan = plan_from_snapshot(ExecutionSpec.from_json(snapshot), Window("id", 10, 20))
    statement = select_statement(plan, "postgres")
    assert statement.sql == (
        'SELECT "id" AS "id", "region" AS "region" FROM (SELECT o.id, c.region, o.at '
        'FROM orders AS o JOIN customers AS c ON c.id = o.cid) AS "q" '
        'WHERE "at" >= %(p0)s AND "id" > %(p1)s AND "id" <= %(p2)s AND ("region" = %(p3)s)'
    )
    assert list(statement.params.values())[1:] == [10, 20, "EU"]
    assert max_statement(plan, "id", "sqlite") == (
        'SELECT MAX("id") FROM (SELECT o.id, c.region, o.at FROM orders AS o '
        'JOIN customers AS c ON c.id = o.cid) AS "q"'
    )


def test_a_plan_without_a_query_still_reads_its_table() -> None:
    plan = ReadPlan(TableRef("public", "orders"), FIELDS[:1])
    assert select_statement(plan, "postgres").sql == 'SELECT "id" AS "id" FROM "public"."orders"'


def test_quoted_values_sit_in_the_tree_and_nothing_else_is_read_as_a_placeholder() -> None:
    """Values rendered by a driver's quoting (PostgreSQL, MySQL): the statement carries no
    parameters, and %-, name- or ?-lookalikes in names and literals stay as they are."""
    fields = [ColumnInfo("%(p0)s", "string"), ColumnInfo(":p0", "string"), ColumnInfo("?", "int64")]
    plan = ReadPlan(
        TableRef("x.y", "z%"),
        fields,
        fields,
        where="""":p0" = ':p1' AND "?" IN (1, 2)""",
        query=None,
    )
    quoted: list[object] = []

    def quote(value: object) -> str:
        quoted.append(value)
        return f"<{value}>"

    statement = select_statement(plan, "postgres", quote=quote)
    assert statement.params == {}
    assert quoted == [":p1", 1, 2]
    assert statement.sql == (
        'SELECT "%(p0)s" AS "%(p0)s", ":p0" AS ":p0", "?" AS "?" FROM "x.y"."z%" '
        'WHERE (":p0" = (<:p1>) AND "?" IN ((<1>), (<2>)))'
    )
