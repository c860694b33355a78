"""The schemas people really have: every table of PostgreSQL's pg_catalog and of MariaDB's
information_schema and mysql schemas, read through a SQL template and written in CSV and JSONL
(the COPY fast path too, where it applies) and Parquet. Each either reads back cleanly (strict
JSON, pyarrow) or fails with a message naming the column: never garbage.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from egress.domain.plan import ReadPlan
from egress.sinks.writers import WRITERS
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import Rendering, SourceError
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.postgresql import PostgresSettings, PostgresSource
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.policy import policy_for


def _refuse(token: str) -> Any:
    raise ValueError(f"not JSON: {token}")


def _read_back(fmt: str, data: bytes) -> int:
    if fmt == "parquet":
        return len(pq.read_table(io.BytesIO(data)).to_pylist())
    if fmt == "jsonl":
        return len([json.loads(x, parse_constant=_refuse) for x in data.decode().splitlines()])
    csv.field_size_limit(sys.maxsize)  # catalog columns hold whole query trees
    # csv.reader, not DictReader: a row of one NULL is an empty line, and still a row.
    return len(list(csv.reader(io.StringIO(data.decode())))) - 1


def _extract_all(source: Any, queries: list[str]) -> dict[str, str]:
    """Every query read once and written in every format; the failures by query and format
    (each must name a column). Catalog tables are small: the batches are kept for the writers."""
    failures: dict[str, str] = {}
    for query in queries:
        fields = source.describe(query)
        plan = ReadPlan(None, fields, fields, query=query)
        try:
            batches = list(source.read(plan, 10_000))
        except (SourceError, ValueError) as exc:
            assert "column '" in str(exc), (query, str(exc))
            failures[query] = str(exc)
            continue
        rows = sum(b.num_rows for b in batches)
        for fmt in ("csv", "jsonl", "parquet"):
            out = io.BytesIO()
            writer = WRITERS[fmt](out, arrow_schema(fields))
            try:
                for batch in batches:
                    writer.write(batch)
                writer.close()
            except (SourceError, ValueError) as exc:
                assert "column '" in str(exc), (query, fmt, str(exc))
                failures[f"{query} {fmt}"] = str(exc)
                continue
            assert _read_back(fmt, out.getvalue()) == rows, (query, fmt)
            fast = getattr(source, "can_copy", None)
            if fmt != "parquet" and fast is not None and fast(plan, Rendering(fmt)):
                # Read again (live views change between reads): strict JSON, whole CSV.
                copied = io.BytesIO()
                n = source.copy_rows(plan, copied, lambda _n: None, Rendering(fmt))
                assert _read_back(fmt, copied.getvalue()) == n, (query, fmt)
    return failures


def test_every_pg_catalog_table(pg_db: PgDatabase, tmp_path: Path) -> None:
    with pg_db.connect() as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'pg_catalog' AND c.relkind IN ('r', 'v') ORDER BY 1"
            ).fetchall()
        ]
    assert len(names) > 100
    settings = PostgresSettings(host="127.0.0.1", database=pg_db.name, user="postgres")
    source = PostgresSource(settings, {}, policy_for(tmp_path))
    failures = _extract_all(source, [f'SELECT * FROM pg_catalog."{n}"' for n in names])
    assert failures == {}


@pytest.mark.parametrize("schema", ["information_schema", "mysql"])
def test_every_mariadb_system_table(mysql_db: MysqlDatabase, tmp_path: Path, schema: str) -> None:
    with mysql_db.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1",
            (schema,),
        )
        names = [r[0] for r in cur.fetchall()]
    assert len(names) > 20
    source = MysqlSource(MysqlSettings(**mysql_db.settings), {}, policy_for(tmp_path))
    failures = _extract_all(source, [f"SELECT * FROM `{schema}`.`{n}`" for n in names])
    assert failures == {}
