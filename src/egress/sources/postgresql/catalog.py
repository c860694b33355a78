"""The PostgreSQL catalog queries: tables, views and their columns, primary keys, and what
the connection's user may change."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg

from egress.domain.catalog import ColumnInfo, TableInfo, group_unique_keys, with_enforced_keys
from egress.sources import base
from egress.sources.postgresql.columns import logical_type, native_type
from egress.sources.postgresql.connect import first_line

# Every type's base type, through any depth of domains (a domain over a domain over char(n)
# is read as char(n)), with the innermost typmod a domain declared (-1: none).
_BASE_TYPES = """
WITH RECURSIVE base (oid, base_oid, typmod) AS (
  SELECT oid, oid, -1 FROM pg_type WHERE typtype <> 'd'
  UNION ALL
  SELECT d.oid, b.base_oid, CASE WHEN b.typmod = -1 THEN d.typtypmod ELSE b.typmod END
  FROM pg_type d JOIN base b ON d.typbasetype = b.oid WHERE d.typtype = 'd'
)"""
# A type's name as the mapping knows it: its base type's; an array's, its element's base
# type's name and "[]" (an array of a domain over char(n) is bpchar[]).
_TYPNAME = """CASE WHEN bt.typcategory = 'A' AND et.oid IS NOT NULL
            THEN et.typname || '[]' ELSE bt.typname END"""
_TYPE_JOINS = """JOIN base b ON b.oid = {type_oid}
JOIN pg_type bt ON bt.oid = b.base_oid
LEFT JOIN base eb ON eb.oid = bt.typelem
LEFT JOIN pg_type et ON et.oid = eb.base_oid"""

CATALOG_SQL = f"""{_BASE_TYPES}
SELECT n.nspname AS schema_name, c.relname AS table_name, c.relkind,
       a.attname,
       {_TYPNAME} AS typname,
       CASE WHEN b.oid <> b.base_oid THEN b.typmod ELSE a.atttypmod END AS typmod,
       a.attnotnull
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
{_TYPE_JOINS.format(type_oid="a.atttypid")}
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname, a.attnum
"""
PK_SQL = """
SELECT n.nspname, c.relname, a.attname
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS key(attnum, pos) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = key.attnum
WHERE k.contype = 'p'
ORDER BY n.nspname, c.relname, key.pos
"""

# UNIQUE indexes (constraints or not) a key can rest on: valid, checked at once (not
# deferrable), over plain columns (no expression), over every row (no WHERE).
UNIQUE_SQL = """
SELECT n.nspname, c.relname, ic.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest((i.indkey::int2[])[0:i.indnkeyatts - 1]) WITH ORDINALITY AS key(attnum, pos)
  ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = key.attnum
WHERE i.indisunique AND NOT i.indisprimary AND i.indisvalid AND i.indimmediate
  AND i.indpred IS NULL AND i.indexprs IS NULL
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname, c.relname, ic.relname, key.pos
"""

# A probe's result types by the names CATALOG_SQL gives them (an array as ``int4[]``, not
# ``_int4``): a SQL template's columns map as a table's do.
TYPNAMES_SQL = f"""{_BASE_TYPES}
SELECT t.oid, {_TYPNAME}
FROM pg_type t
{_TYPE_JOINS.format(type_oid="t.oid")}
WHERE t.oid = ANY(%s::oid[])
"""

ACCESS_SQL = """
SELECT r.rolsuper,
       EXISTS (
         SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'f')
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'
           AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
                OR has_table_privilege(c.oid, 'DELETE'))
       )
       OR has_database_privilege(current_database(), 'CREATE')
       OR EXISTS (
         SELECT 1 FROM pg_namespace n
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%' AND has_schema_privilege(n.oid, 'CREATE')
       )
FROM pg_roles r WHERE r.rolname = current_user
"""


def tables_from(
    rows: list[Any], pk_rows: list[Any], unique_rows: list[Any] | None = None
) -> list[TableInfo]:
    """The catalog's tables from the rows of CATALOG_SQL, PK_SQL and UNIQUE_SQL: a table
    without a primary key is keyed by a UNIQUE NOT NULL key when it has one."""
    keys: dict[tuple[str, str], list[str]] = defaultdict(list)
    for schema, table, col in pk_rows:
        keys[(schema, table)].append(col)
    tables: dict[tuple[str, str], TableInfo] = {}
    for schema, table, relkind, col, typname, typmod, notnull in rows:
        info = tables.get((schema, table))
        if info is None:
            info = TableInfo(
                schema=schema,
                name=table,
                columns=[],
                primary_key=keys.get((schema, table), []),
                kind="table" if relkind in ("r", "p", "f") else "view",
            )
            tables[(schema, table)] = info
        info.columns.append(
            ColumnInfo(col, logical_type(typname, typmod), not notnull, native_type(typname))
        )
    return with_enforced_keys(list(tables.values()), group_unique_keys(unique_rows or []))


def describe_query(conn: psycopg.Connection[Any], probe: str, limit_s: float) -> list[ColumnInfo]:
    """The columns of ``probe`` (a query that returns no rows), run within ``limit_s``; the
    session keeps that statement timeout."""
    timeout_ms = str(int(limit_s * 1000))
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (timeout_ms,))
    try:
        cur = conn.execute(probe)
    except psycopg.errors.QueryCanceled as exc:
        raise base.QueryError(base.probe_too_slow(limit_s)) from exc
    except (psycopg.Error, UnicodeDecodeError) as exc:
        raise base.QueryError(first_line(exc)) from exc
    columns = cur.description or []
    result = cur.pgresult
    assert result is not None, "an executed statement has a result"
    # The probe reports type OIDs (domains already resolved to their base type) and typmods:
    # the same inputs the catalog maps from pg_attribute.
    try:
        typnames = dict(conn.execute(TYPNAMES_SQL, ([c.type_code for c in columns],)).fetchall())
    except psycopg.Error as exc:
        raise base.SourceError(first_line(exc)) from exc
    return [
        ColumnInfo(
            c.name,
            logical_type(typname := typnames.get(c.type_code, ""), result.fmod(i)),
            native=native_type(typname),
        )
        for i, c in enumerate(columns)
    ]
