"""The Python SDK (``egress.client``) against a real server, verb by verb: resources, trigger
with options and an idempotency key, ``wait`` with its progress callback and ``RunFailed``,
typed errors carrying the problem JSON, and downloads that resume after a cut connection, detect
tampered bytes, and fetch a split run part by part. The same calls through ``AsyncClient``."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from pydantic.fields import FieldInfo

from egress.client import (
    AsyncClient,
    ChecksumMismatch,
    Client,
    Conflict,
    Execution,
    Invalid,
    NoFile,
    NotFound,
    RunFailed,
    Unauthorized,
    WaitTimeout,
)
from egress.client.models import MODEL_SCHEMAS
from egress.demo import create_orders_db, run_demo
from tests.conftest import Server
from tests.support.cutproxy import cut_proxy

ORDERS = 3000
FIELDS = ["id", "order_number", "customer_name", "region", "amount"]
SLOW_QUERY = (  # a source that takes minutes: 30 million generated rows
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000000) "
    "SELECT x AS id FROM c"
)


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[Client]:
    with Client(server.base_url, server.token) as c:
        yield c


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_orders_db(tmp_path_factory.mktemp("shop") / "shop.db", rows=ORDERS)


@pytest.fixture(scope="module")
def orders_template(client: Client, shop: Path) -> str:
    connection = client.connections.create("shop", "sqlite", {"path": str(shop)})
    [template] = [t for t in client.templates.list(connection).data if t.name == "main.orders"]
    return template.id


def _config(client: Client, template_id: str, name: str, **extra: object) -> str:
    body = {
        "name": name,
        "template_id": template_id,
        "fields": FIELDS,
        "format": "csv",
        "destination": {"type": "storage", "path": "sdk"},
        **extra,
    }
    created = client.configurations.create(**body)
    assert created.status == "DRAFT"
    return client.configurations.submit(created).id


def _source(db: Path, where: str = "1=1") -> list[list[str]]:
    with sqlite3.connect(db) as conn:
        columns = ", ".join(FIELDS).replace("amount", "printf('%.2f', amount)")  # DECIMAL(12,2)
        rows = conn.execute(f"SELECT {columns} FROM orders WHERE {where} ORDER BY id")
        return [[str(v) for v in row] for row in rows]


def _csv(path: Path) -> list[list[str]]:
    header, *rows = csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    assert header == FIELDS
    return rows


def test_resources_round_trip(client: Client, shop: Path, orders_template: str) -> None:
    conn = client.connections.create("scratch", "sqlite", {"path": str(shop)})
    assert client.connections.get(conn.id).name == "scratch"
    assert conn.id in [c.id for c in client.connections.list(limit=200).data]
    assert client.connections.update(conn, name="scratch2").name == "scratch2"
    tested = client.connections.test(conn)
    assert (tested.ok, tested.error) == (True, None)
    [folder] = client.connections.elements(conn)
    assert (folder.element_type, folder.name) == ("FOLDER", "main")
    [orders] = [e for e in folder.children if e.name == "orders"]
    assert [c.name for c in orders.children][:3] == ["id", "order_number", "customer_name"]

    template = client.templates.get(orders_template)
    assert template.name == "main.orders" and template.primary_key == ["id"]
    cfg = client.configurations.create(
        {"name": "draft", "templateId": orders_template, "format": "jsonl"},
        destination={"type": "storage"},
    )
    assert (cfg.format, cfg.status, cfg.fields) == ("jsonl", "DRAFT", None)
    assert client.configurations.update(cfg, filter="id > 10").filter == "id > 10"
    assert cfg.id in [c.id for c in client.configurations.list(status="DRAFT", limit=200).data]
    client.configurations.delete(cfg)
    with pytest.raises(NotFound):
        client.configurations.get(cfg.id)
    client.connections.delete(conn)


def test_trigger_wait_and_download(
    client: Client, shop: Path, orders_template: str, tmp_path: Path
) -> None:
    cfg = _config(client, orders_template, "eu_orders")
    execution = client.configurations.trigger(cfg, where="region = 'EU'", idempotency_key="eu-once")
    assert isinstance(execution, Execution) and execution.latest_status in {
        "PENDING",
        "IN_PROGRESS",
    }
    again = client.configurations.trigger(cfg, where="region = 'EU'", idempotency_key="eu-once")
    assert again.id == execution.id  # same key, same options: the same execution

    seen: list[str] = []
    done = execution.wait(timeout=60, on_progress=lambda e: seen.append(e.latest_status))
    assert done.latest_status == "COMPLETED" and seen[-1] == "COMPLETED"
    expected = _source(shop, "region = 'EU'")
    assert done.latest.record_count == len(expected)
    assert [s.id for s in client.executions.list(cfg).data] == [execution.id]
    assert client.executions.find(execution.id).id == execution.id

    rerun = client.executions.rerun(done)
    assert [r.run for r in rerun.runs] == [1, 2]
    again = client.executions.wait(rerun.id, cfg, timeout=60)
    assert [r.status for r in again.runs] == ["COMPLETED", "COMPLETED"]
    [first] = client.download(again, run=1, to=tmp_path / "run1.csv")
    assert _csv(first) == expected

    [path] = client.download(done, to=tmp_path)  # the latest run's, as the server says now
    assert path.parent == tmp_path and path.name == again.latest.file.name  # type: ignore[union-attr]
    assert _csv(path) == expected
    assert not list(tmp_path.glob("*.part*"))
    # To a file name of one's own; the same call again overwrites it, verified again.
    [named] = client.download(done, to=tmp_path / "eu.csv")
    assert named == tmp_path / "eu.csv" and named.read_bytes() == path.read_bytes()


def test_failed_run_raises_run_failed(client: Client, tmp_path: Path) -> None:
    db = tmp_path / "fragile.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE doomed (id INTEGER PRIMARY KEY)")
    connection = client.connections.create("fragile", "sqlite", {"path": str(db)})
    [tpl] = client.templates.list(connection).data
    cfg = client.configurations.create(
        name="doomed", template_id=tpl.id, format="csv", destination={"type": "storage"}
    )
    client.configurations.submit(cfg)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE doomed")
    execution = client.configurations.trigger(cfg)
    with pytest.raises(RunFailed) as failed:
        execution.wait(timeout=60)
    assert failed.value.execution.latest_status == "FAILED"
    assert failed.value.error_message and "doomed" in failed.value.error_message
    assert failed.value.retryable is False
    with pytest.raises(NoFile):
        client.download(failed.value.execution, to=tmp_path)


def test_wait_gives_up_after_its_timeout_and_a_cancelled_run_returns(
    client: Client, shop: Path
) -> None:
    connection = client.connections.create("slow", "sqlite", {"path": str(shop)})
    template = client.templates.create(connection_id=connection.id, name="slow", query=SLOW_QUERY)
    cfg = client.configurations.create(
        name="slow", template_id=template.id, format="csv", destination={"type": "storage"}
    )
    execution = client.configurations.trigger(client.configurations.submit(cfg))
    with pytest.raises(WaitTimeout) as timed_out:
        execution.wait(timeout=1)
    assert timed_out.value.execution.latest_status in {"PENDING", "IN_PROGRESS"}
    assert isinstance(timed_out.value, TimeoutError)
    client.executions.cancel(execution)
    assert execution.wait(timeout=60).latest_status == "CANCELLED"


def test_data_tables(client: Client, orders_template: str) -> None:
    cfg = _config(
        client,
        orders_template,
        "to_table",
        destination={"type": "dataTable", "dataTable": "orders_copy", "mode": "upsert"},
        filter="id <= 150",
    )
    assert client.configurations.trigger(cfg).wait(60).latest.record_count == 150
    [summary] = [t for t in client.data_tables.list().data if t.name == "orders_copy"]
    table = client.data_tables.get(summary)
    assert (table.row_count, table.mode, table.primary_key) == (150, "upsert", ["id"])
    first = client.data_tables.rows(table, limit=100)
    rest = client.data_tables.rows(table, limit=100, cursor=first.next_cursor)
    ids = [r["id"] for r in first.data + rest.data]
    assert ids == list(range(1, 151)) and rest.next_cursor is None


def test_errors_are_typed_and_carry_the_problem(client: Client, server: Server) -> None:
    with pytest.raises(NotFound) as missing:
        client.connections.get("nope")
    assert missing.value.status == 404 and missing.value.problem["status"] == 404
    with pytest.raises(Invalid) as invalid:
        client.configurations.create(name="bad", template_id="x", format="xml")
    assert "format" in [e["field"] for e in invalid.value.errors]
    with Client(server.base_url, "not-a-token") as stranger, pytest.raises(Unauthorized):
        stranger.connections.list()


def test_rerun_of_a_run_without_data_is_a_conflict(client: Client, orders_template: str) -> None:
    cfg = _config(client, orders_template, "nobody", filter="id < 0")
    execution = client.configurations.trigger(cfg).wait(timeout=60)
    assert execution.latest_status == "COMPLETED_NO_DATA"
    with pytest.raises(Conflict) as conflict:
        client.executions.rerun(execution)
    assert "COMPLETED_NO_DATA" in conflict.value.detail


def test_an_interrupted_download_resumes_and_is_verified(
    server: Server, client: Client, shop: Path, orders_template: str, tmp_path: Path
) -> None:
    done = client.configurations.trigger(_config(client, orders_template, "all")).wait(60)
    size = done.latest.file.size_bytes  # type: ignore[union-attr]
    assert size is not None and size > 100_000
    progress: list[int] = []
    with (
        cut_proxy(urlparse(server.base_url).port or 0) as proxy,
        Client(proxy.url, server.token) as flaky,
    ):
        proxy.cut_next_download_after(40_000)
        [path] = flaky.download(done, to=tmp_path, on_progress=lambda _n, d, _t: progress.append(d))
    downloads = [r for r in proxy.requests if "/download" in r.splitlines()[0]]
    assert len(downloads) == 2, downloads
    assert "range:" not in downloads[0].lower()
    resumed = {
        k.lower(): v.strip() for k, v in (h.split(":", 1) for h in downloads[1].splitlines()[1:])
    }
    first_try = max(d for d in progress if d <= 40_000)
    assert resumed["range"] == f"bytes={first_try}-"
    assert resumed["if-range"] == f'"{done.latest.file.sha256}"'  # type: ignore[union-attr]
    assert progress[-1] == size
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.latest.file.sha256  # type: ignore[union-attr]
    assert _csv(path) == _source(shop)


def test_a_tampered_file_is_detected_and_not_put_in_place(
    server: Server, client: Client, orders_template: str, tmp_path: Path
) -> None:
    done = client.configurations.trigger(_config(client, orders_template, "tampered")).wait(60)
    name = done.latest.file.name  # type: ignore[union-attr]
    [stored] = [p for p in server.data_dir.rglob(name) if p.is_file()]
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0x01  # one bit, same size: only the hash can tell
    stored.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch) as mismatch:
        client.download(done, to=tmp_path)
    assert mismatch.value.expected == done.latest.file.sha256  # type: ignore[union-attr]
    assert list(tmp_path.iterdir()) == []  # neither the file nor its partial copy


def test_a_split_run_downloads_part_by_part(
    client: Client, shop: Path, orders_template: str, tmp_path: Path
) -> None:
    done = client.configurations.trigger(
        _config(client, orders_template, "by_region", split_by="region")
    ).wait(60)
    parts = done.latest.sub_extracts
    paths = client.download(done, to=tmp_path / "parts")
    assert sorted(p.name for p in paths) == sorted(s.file.name for s in parts)  # type: ignore[union-attr]
    assert not [p for p in paths if p.suffix == ".zip"]
    rows = sorted((row for p in paths for row in _csv(p)), key=lambda r: int(r[0]))
    assert rows == _source(shop)
    eu = next(s for s in parts if s.value == "EU")
    status = client.executions.sub_extract(done, eu.id)
    assert (status.value, status.run, status.status) == ("EU", 1, "COMPLETED")
    assert status.record_count == len(_source(shop, "region = 'EU'"))
    [one] = client.download(done, sub_extract=eu.id, to=tmp_path)
    assert _csv(one) == _source(shop, "region = 'EU'")


def test_the_async_client(server: Server, shop: Path, orders_template: str, tmp_path: Path) -> None:
    async def flow() -> tuple[Execution, list[Path]]:
        async with AsyncClient(server.base_url, server.token) as client:
            configs = await client.configurations.list(limit=200)
            cfg = next(c for c in configs.data if c.name == "eu_orders")  # type: ignore[attr-defined]
            execution = await client.configurations.trigger(cfg, where="region = 'NA'")
            done = await client.executions.wait(execution, timeout=60)
            return done, await client.download(done, to=tmp_path)

    done, [path] = asyncio.run(flow())
    assert done.latest_status == "COMPLETED"
    assert _csv(path) == _source(shop, "region = 'NA'")


def test_models_match_the_servers_openapi_document(client: Client) -> None:
    """Every SDK model has exactly the fields of the schema it mirrors, and a value the server
    may leave out or send as null is optional in the model: a change on either side fails here."""
    schemas = client.request("GET", "/openapi.json").json()["components"]["schemas"]
    for model, name in MODEL_SCHEMAS.items():
        schema = schemas[name]
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        assert set(fields) == set(schema["properties"]), (model.__name__, name)
        for key, prop in schema["properties"].items():
            nullable = {"type": "null"} in prop.get("anyOf", [])
            if nullable or key not in schema.get("required", []):
                assert not fields[key].is_required() or _allows_none(fields[key]), (name, key)


def _allows_none(field: FieldInfo) -> bool:
    return type(None) in getattr(field.annotation, "__args__", ())


def test_docs_load_without_internet_access(client: Client) -> None:
    """Swagger UI's page, script and style come from the server itself (the package), so /docs
    works on a machine that cannot reach a CDN. (Here: this module's server is already up.)"""
    page = client.request("GET", "/docs").text
    assert "cdn" not in page.lower() and "https://" not in page
    scripts = re.findall(r'src="([^"]+)"', page) + re.findall(r'href="([^"]+\.css)"', page)
    assert scripts == ["/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"]
    for asset in scripts:
        response = client.request("GET", asset)
        assert len(response.content) > 10_000, asset
    assert "SwaggerUIBundle" in client.request("GET", scripts[0]).text
    with pytest.raises(NotFound):
        client.request("GET", "/redoc")  # not offered: no package ships ReDoc


def test_the_demo_runs_on_the_sdk(client: Client, tmp_path: Path) -> None:
    """`egress demo`'s steps, twice: the second time it finds its connection and
    configuration again, and each time the file lands in the downloads folder."""
    db = create_orders_db(tmp_path / "demo.db", rows=300)
    for _ in range(2):
        result = run_demo(client, db, tmp_path / "downloads")
        assert result["execution"].latest_status == "COMPLETED"
        assert result["file"].parent == tmp_path / "downloads"
        assert len(result["file"].read_text(encoding="utf-8").splitlines()) == 301
    assert [c.name for c in client.connections.list(limit=200).data].count("demo_shop") == 1
