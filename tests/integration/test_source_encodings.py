"""Non-UTF-8 PostgreSQL databases (issue 13, item 8): every session speaks UTF-8, so a LATIN1
database's text arrives converted in every format and filters match it; a SQL_ASCII database
(which cannot convert) is decoded strictly with the connection's sourceEncoding, fails naming
the column when its bytes do not decode, and browsing it never fails on bytes."""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from egress.container import Container
from egress.domain.paging import PageRequest
from egress.domain.status import RunStatus
from egress.sources import SourceError
from egress.sources.postgresql import PostgresSettings
from tests.conftest import make_settings
from tests.support.factories import submitted_configuration
from tests.support.migrated import migrate

TEXTS = ["café", "Ærøskøbing", "naïve ü", "plain"]


@pytest.fixture
def c(tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    migrate(settings.resolved_database_url)
    container = Container.build(settings)
    yield container
    container.engine.dispose()


@pytest.fixture
def database(postgres_admin_url: str) -> Iterator[Any]:
    """make(encoding) → the name of a new database in that encoding (dropped afterwards)."""
    created: list[str] = []

    def make(encoding: str) -> str:
        name = f"egress_enc_{secrets.token_hex(4)}"
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(
                f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C'"  # type: ignore[arg-type]
                " TEMPLATE template0"
            )
        created.append(name)
        return name

    yield make
    with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


def _fill(postgres_admin_url: str, name: str, client_encoding: str, column: str = "s") -> None:
    """``t (id int, <column> text)`` with TEXTS, written through ``client_encoding``."""
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True, client_encoding=client_encoding) as conn:
        conn.execute(f'CREATE TABLE t (id int PRIMARY KEY, "{column}" text)')  # type: ignore[arg-type]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s)", list(enumerate(TEXTS, 1)))


def _connection(c: Container, ws: str, name: str, **extra: Any) -> str:
    settings = {"host": "127.0.0.1", "database": name, "user": "postgres", **extra}
    label = f"pg_{name}_{secrets.token_hex(2)}"
    return c.connections.create(ws, label, "postgresql", settings, None).id


def _run(c: Container, ws: str, cfg: str, **options: Any) -> Any:
    execution, _ = c.services.executions.trigger(ws, cfg, options)
    assert c.worker().run_once()
    run = c.executions.get(ws, cfg, execution.id).latest
    assert run is not None
    return run


def _rows(c: Container, run: Any, fmt: str) -> list[tuple[int, str]]:
    assert run.status == RunStatus.COMPLETED, run.error_message
    data = b"".join(c.storage.stream(run.files[0].storage_key))
    if fmt == "csv":
        return [(int(i), s) for i, s in list(csv.reader(io.StringIO(data.decode())))[1:]]
    if fmt == "jsonl":
        return [(r["id"], r["s"]) for r in map(json.loads, data.decode().splitlines())]
    table = pq.read_table(io.BytesIO(data))
    return list(zip(table.column("id").to_pylist(), table.column("s").to_pylist(), strict=True))


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_latin1_database_arrives_as_utf8_and_filters_match_its_text(
    c: Container, database: Any, postgres_admin_url: str, fmt: str
) -> None:
    name = database("LATIN1")
    _fill(postgres_admin_url, name, "UTF8")
    ws = c.workspaces.ensure_workspace("t")
    conn = _connection(c, ws, name)
    c.services.catalog.discover(ws, conn)
    tpl = next(
        t for t in c.templates.list_page(ws, conn, PageRequest()).items if t.name == "public.t"
    )
    cfg = submitted_configuration(c, ws, tpl.id, f"latin1_{fmt}", format=fmt)
    expected = list(enumerate(TEXTS, 1))
    assert _rows(c, _run(c, ws, cfg), fmt) == expected  # strict UTF-8 decoding above
    assert _rows(c, _run(c, ws, cfg, whereClause="s = 'café' OR s LIKE 'Ær%'"), fmt) == [
        (1, "café"),
        (2, "Ærøskøbing"),
    ]


def test_a_sql_ascii_database_is_decoded_with_its_source_encoding(
    c: Container, database: Any, postgres_admin_url: str
) -> None:
    name = database("SQL_ASCII")
    _fill(postgres_admin_url, name, "LATIN1")  # Latin-1 bytes
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True, client_encoding="LATIN1") as conn:
        conn.execute('CREATE TABLE "señal" (id int)')  # a name in Latin-1 too
    ws = c.workspaces.ensure_workspace("t")

    # Default utf-8: a name that is not UTF-8 is the server's clear refusal, never bytes.
    plain = _connection(c, ws, name)
    with pytest.raises(SourceError, match="invalid byte sequence for encoding"):
        c.services.catalog.discover(ws, plain)

    latin = _connection(c, ws, name, sourceEncoding="latin-1")
    tables = {t.qualified_name: t for t in c.services.catalog.discover(ws, latin)}
    assert tables.keys() == {"public.señal", "public.t"}
    assert [(col.name, col.type) for col in tables["public.t"].columns] == [
        ("id", "int32"),
        ("s", "string"),
    ]
    tpl = next(
        t for t in c.templates.list_page(ws, latin, PageRequest()).items if t.name == "public.t"
    )
    for fmt in ("csv", "parquet"):
        cfg = submitted_configuration(c, ws, tpl.id, f"ascii_{fmt}", format=fmt)
        run = _run(c, ws, cfg)
        assert run.status == RunStatus.COMPLETED, run.error_message
        data = b"".join(c.storage.stream(run.files[0].storage_key))
        if fmt == "csv":
            assert data.decode() == '"id","s"\n' + "".join(
                f'{i},"{s}"\n' for i, s in enumerate(TEXTS, 1)
            )
        else:
            assert pq.read_table(io.BytesIO(data)).column("s").to_pylist() == TEXTS
    cfg = submitted_configuration(c, ws, tpl.id, "ascii_filtered")
    filtered = _run(c, ws, cfg, whereClause="s IN ('café', 'naïve ü')")
    assert filtered.status == RunStatus.COMPLETED, filtered.error_message
    assert filtered.record_count == 2


def test_a_sql_ascii_databases_char_n_keeps_its_padding(
    c: Container, database: Any, postgres_admin_url: str
) -> None:
    """SQL_ASCII text is read as its bytes (``convert_to``): char(n) through its own text."""
    name = database("SQL_ASCII")
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True, client_encoding="LATIN1") as conn:
        conn.execute("CREATE TABLE p (id int PRIMARY KEY, c char(6))")
        conn.execute("INSERT INTO p VALUES (1, 'café'), (2, NULL), (3, '')")
    ws = c.workspaces.ensure_workspace("t")
    latin = _connection(c, ws, name, sourceEncoding="latin-1")
    c.services.catalog.discover(ws, latin)
    tpl = next(
        t for t in c.templates.list_page(ws, latin, PageRequest()).items if t.name == "public.p"
    )
    cfg = submitted_configuration(c, ws, tpl.id, "ascii_padded", format="csv")
    run = _run(c, ws, cfg)
    assert run.status == RunStatus.COMPLETED, run.error_message
    data = b"".join(c.storage.stream(run.files[0].storage_key))
    assert data.decode() == '"id","c"\n1,"café  "\n2,\n3,"      "\n'


def test_sql_ascii_bytes_that_do_not_decode_fail_the_run_naming_the_column(
    c: Container, database: Any, postgres_admin_url: str
) -> None:
    name = database("SQL_ASCII")
    _fill(postgres_admin_url, name, "LATIN1")
    ws = c.workspaces.ensure_workspace("t")
    conn = _connection(c, ws, name)
    tables = c.services.catalog.discover(ws, conn)  # ASCII names: browsing is fine
    assert [(col.name, col.type) for col in tables[0].columns] == [("id", "int32"), ("s", "string")]
    tpl = next(
        t for t in c.templates.list_page(ws, conn, PageRequest()).items if t.name == "public.t"
    )
    for fmt in ("csv", "jsonl"):
        run = _run(c, ws, submitted_configuration(c, ws, tpl.id, f"bad_{fmt}", format=fmt))
        assert run.status == RunStatus.FAILED
        assert "column 's' holds bytes that are not valid utf-8" in run.error_message
        assert not run.files
    # Only ASCII rows: they decode, so the run completes.
    ok = _run(c, ws, submitted_configuration(c, ws, tpl.id, "ascii_only"), whereClause="id = 4")
    assert ok.status == RunStatus.COMPLETED and ok.record_count == 1


def test_an_unknown_source_encoding_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValidationError, match="must be one of utf-8, latin-1"):
        PostgresSettings(host="h", database="d", user="u", sourceEncoding="ebcdic")
