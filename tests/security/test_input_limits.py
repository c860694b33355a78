"""Request limits, input hygiene, storage namespaces, file modes and temporary folders (issue 10:
items 8 and 9 and the "Low" items about dates, rows, NUL bytes, file names, modes and temp
folders), each against a real `egress serve`."""

from __future__ import annotations

import select
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from egress.db.engine import make_engine
from egress.db.workspaces import WorkspaceRepo
from egress.demo import create_orders_db
from tests.conftest import PgDatabase, Server, start_server, stop_server, wait_for_status
from tests.e2e.helpers import DONE, api, assert_clean_log, problem, running_server
from tests.support.http import template
from tests.support.identity import create_token, create_workspace

API = "/api/v1"
CONFIGS = f"{API}/extraction-configurations"
BODY_LIMIT = 8 << 20  # the default of EGRESS_MAX_BODY_BYTES
STRING_CAP = 64 << 10


# ------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # fresh: the server creates its own metadata database (its mode is checked below)
    with running_server(tmp_path_factory.mktemp("limits"), fresh=True) as s:
        yield s


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with api(server) as client:
        yield client


def _shop(server: Server) -> Path:
    """The sample database, under the data dir's `sources` folder (the default files root)."""
    path = server.data_dir / "sources" / "shop.db"
    if not path.exists():
        create_orders_db(path, rows=30)
    return path


def _sqlite_template(http: httpx.Client, server: Server, name: str) -> str:
    r = http.post(
        f"{API}/connections",
        json={"name": name, "type": "sqlite", "settings": {"path": str(_shop(server))}},
    )
    assert r.status_code == 201, r.text
    return str(template(http, r.json()["id"], "main.orders")["id"])


@pytest.fixture(scope="module")
def orders(http: httpx.Client, server: Server) -> str:
    """A template of the sample `orders` table with a primary key and a date field."""
    discovered = _sqlite_template(http, server, "shop")
    r = http.post(
        f"{API}/templates",
        json={
            "connectionId": http.get(f"{API}/templates/{discovered}").json()["connectionId"],
            "name": "orders_by_day",
            "table": "main.orders",
            "primaryKey": ["id"],
            "dateField": "ordered_at",
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _configuration(http: httpx.Client, template_id: str, name: str, **body: Any) -> str:
    payload = {
        "name": name,
        "templateId": template_id,
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
        **body,
    }
    r = http.post(CONFIGS, json=payload)
    assert r.status_code == 201, r.text
    cfg = str(r.json()["id"])
    assert http.post(f"{CONFIGS}/{cfg}/submit").status_code == 200
    return cfg


def _run(http: httpx.Client, cfg: str, **options: Any) -> dict[str, Any]:
    r = http.post(f"{CONFIGS}/{cfg}/executions", json=options or None)
    assert r.status_code == 202, r.text
    return wait_for_status(http, cfg, r.json()["id"], DONE)  # type: ignore[return-value]


def _count(http: httpx.Client, path: str) -> int:
    r = http.get(path)
    assert r.status_code == 200, r.text
    return int(r.json()["totalSize"])


# -------------------------------------------------------------------- item 9: body limit
def _address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def _request_head(server: Server, extra: str) -> bytes:
    return (
        f"POST {API}/connections HTTP/1.1\r\nHost: egress\r\n"
        f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n{extra}\r\n"
    ).encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(30)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 16)
        assert chunk, f"the connection closed without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def test_a_declared_length_over_the_limit_is_413_before_any_body_is_sent(
    server: Server, http: httpx.Client
) -> None:
    """The 300 MB secret of the report: answered from the headers alone, nothing parsed."""
    before = _count(http, f"{API}/connections")
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(_request_head(server, "Content-Length: 300000000\r\n"))
        status, headers, body = _read_response(sock)
        assert sock.recv(1) == b""  # and the connection is closed, the body never read
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert b'"status":413' in body and str(BODY_LIMIT).encode() in body
    assert http.get("/healthz").status_code == 200
    assert _count(http, f"{API}/connections") == before


def test_a_chunked_body_is_cut_off_at_the_limit(server: Server, http: httpx.Client) -> None:
    """No Content-Length: the body is counted as it streams and refused once past the limit,
    long before the 300 MiB the client would send."""
    before = _count(http, f"{API}/connections")
    chunk = b'{"name": "big", "type": "sqlite", "settings": {"path": "' + b"a" * (256 << 10)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with socket.create_connection(_address(server)) as sock:
        sock.sendall(_request_head(server, "Transfer-Encoding: chunked\r\n"))
        while sent < 300 << 20 and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(frame)
            except OSError:  # the server closed the connection after answering
                break
            sent += len(chunk)
        status, headers, body = _read_response(sock)
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert sent < 100 << 20, f"the server read {sent} bytes before refusing"
    assert _count(http, f"{API}/connections") == before


def test_settings_and_secrets_are_capped_at_64_kib(http: httpx.Client) -> None:
    before = _count(http, f"{API}/connections")
    big = "h" * (STRING_CAP + 1)
    base = {"name": "capped", "type": "postgresql"}
    settings = {"host": "127.0.0.1", "port": 5432, "database": "x", "user": "u"}
    r = http.post(f"{API}/connections", json={**base, "settings": {**settings, "host": big}})
    assert "65536 bytes" in problem(r, 422, "settings.host")["detail"]
    r = http.post(
        f"{API}/connections", json={**base, "settings": settings, "secrets": {"password": big}}
    )
    problem(r, 422, "secrets.password")
    # Characters count as the bytes they take: 22,000 of 3 bytes each are over the cap.
    r = http.post(
        f"{API}/connections", json={**base, "settings": {**settings, "user": "€" * 22_000}}
    )
    problem(r, 422, "settings.user")
    assert _count(http, f"{API}/connections") == before

    made = http.post(f"{API}/connections", json={**base, "settings": settings})
    assert made.status_code == 201, made.text
    url = f"{API}/connections/{made.json()['id']}"
    problem(http.patch(url, json={"secrets": {"password": big}}), 422, "secrets.password")
    problem(http.patch(url, json={"settings": {**settings, "database": big}}), 422)
    assert http.get(url).json()["settings"]["database"] == "x"
    assert http.delete(url).status_code == 204


# ---------------------------------------------------------------------------- NUL bytes
NUL = "\u0000"


def test_a_nul_byte_in_a_connection_setting_is_422_and_creates_nothing(
    http: httpx.Client,
) -> None:
    """`127.0.0.1\\u0000x` used to connect to 127.0.0.1: the driver cut the string at NUL."""
    before = _count(http, f"{API}/connections")
    settings = {"host": f"127.0.0.1{NUL}x", "port": 5432, "database": "x", "user": "postgres"}
    r = http.post(
        f"{API}/connections", json={"name": "nul", "type": "postgresql", "settings": settings}
    )
    body = problem(r, 422, "settings.host")
    assert "NUL" in body["detail"]
    assert _count(http, f"{API}/connections") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": f"a{NUL}b", "type": "sqlite", "settings": {"path": "/x.db"}}, "name"),
        ({"name": "n", "type": "sqlite", "settings": {"path": f"/x.db{NUL}"}}, "settings.path"),
        (
            {"name": "n", "type": "sqlite", "settings": {f"pa{NUL}th": "/x.db"}},
            "settings.pa\\u0000th",
        ),
        (
            {
                "name": "n",
                "type": "postgresql",
                "settings": {"host": "h", "database": "d", "user": "u"},
                "secrets": {"password": f"pw{NUL}"},
            },
            "secrets.password",
        ),
    ],
)
def test_nul_bytes_in_connections_are_422(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = _count(http, f"{API}/connections")
    problem(http.post(f"{API}/connections", json=body), 422, field)
    assert _count(http, f"{API}/connections") == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": f"orders{NUL}"}, "name"),
        ({"fileNamePattern": f"{{configurationName}}{NUL}.{{ext}}"}, "fileNamePattern"),
        ({"destination": {"type": "storage", "path": f"out{NUL}/x"}}, "destination.path"),
        ({"filter": f"region = 'EU{NUL}'"}, "filter"),
        ({"fields": ["id", f"region{NUL}"]}, "fields.1"),
    ],
)
def test_nul_bytes_in_configurations_are_422(
    http: httpx.Client, orders: str, change: dict[str, Any], field: str
) -> None:
    before = _count(http, CONFIGS)
    body = {
        "name": "nul_cfg",
        "templateId": orders,
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
    }
    problem(http.post(CONFIGS, json={**body, **change}), 422, field)
    assert _count(http, CONFIGS) == before
    cfg = _configuration(http, orders, f"nul_patch_{field}")
    problem(http.patch(f"{CONFIGS}/{cfg}", json=change), 422, field)
    assert http.get(f"{CONFIGS}/{cfg}").json()["version"] == 2  # created, submitted; no more


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"whereClause": f"region = 'EU{NUL}'"}, "whereClause"),
        ({"selectAll": False, "rows": [{"id": f"1{NUL}"}]}, "rows.0.id"),
        ({"dateFrom": f"2026-01-01{NUL}"}, "dateFrom"),
    ],
)
def test_nul_bytes_in_trigger_options_are_422(
    http: httpx.Client, orders: str, options: dict[str, Any], field: str
) -> None:
    cfg = _configuration(http, orders, f"nul_trigger_{field}")
    problem(http.post(f"{CONFIGS}/{cfg}/executions", json=options), 422, field)
    assert _count(http, f"{CONFIGS}/{cfg}/executions") == 0


# ---------------------------------------------- lone surrogates, numbers that are not finite
@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ('{"selectAll": false, "rows": [{"id": 1e400}]}', "rows.0.id", "finite"),
        ('{"selectAll": false, "rows": [{"id": NaN}]}', "rows.0.id", "finite"),
        ('{"selectAll": false, "rows": [{"id": -Infinity}]}', "rows.0.id", "finite"),
        ('{"selectAll": false, "rows": [{"id": "a\\ud800"}]}', "rows.0.id", "lone surrogate"),
        ('{"whereClause": "region = \'\\udc00\'"}', "whereClause", "lone surrogate"),
    ],
)
def test_unstorable_trigger_values_are_422_and_the_queue_runs_on(
    http: httpx.Client, orders: str, raw: str, field: str, words: str
) -> None:
    """Python's JSON reads 1e400 as infinity and takes NaN and lone surrogates: such a trigger
    was 202, and its options (not strict JSON) made every claim of the run queue fail on
    SQLite metadata, so no run of any workspace ran until it was cancelled; a lone surrogate
    answered 500 with the execution stored, and every read of it failed."""
    cfg = _configuration(http, orders, f"unstorable_{field}_{words}_{len(raw)}")
    r = http.post(
        f"{CONFIGS}/{cfg}/executions", content=raw, headers={"Content-Type": "application/json"}
    )
    assert words in problem(r, 422, field)["detail"]
    assert _count(http, f"{CONFIGS}/{cfg}/executions") == 0
    assert _run(http, cfg)["latestStatus"] == "COMPLETED"


def test_unstorable_values_elsewhere_are_refused_naming_them(
    http: httpx.Client, orders: str
) -> None:
    """A connection's settings and seed 001's extract (its own 400 dialect) alike."""
    r = http.post(
        f"{API}/connections",
        content='{"name": "n", "type": "sqlite", "settings": {"path": "/x\\ud800.db"}}',
        headers={"Content-Type": "application/json"},
    )
    assert "lone surrogate" in problem(r, 422, "settings.path")["detail"]
    r = http.post(
        "/api/v3.1/extracts/",
        content='{"data_table_title": "t", "template_id": "x", "accounts": ["a"],'
        ' "template_settings": {"additional_params": {"k": 1e400}}}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert "finite" in r.text and "additional_params" in r.text


def test_a_json_body_sent_as_another_type_says_so(http: httpx.Client, orders: str) -> None:
    """FastAPI reads a body as JSON only under a JSON Content-Type: the 422 said only "Input
    should be a valid dictionary" (seed 003's export, the native API's bodies alike)."""
    before = _count(http, CONFIGS)
    body = '{"name": "typed", "templateId": "x", "format": "csv"}'
    for sent, named in (("text/plain", "Content-Type 'text/plain'"), (None, "no Content-Type")):
        headers = {} if sent is None else {"Content-Type": sent}
        detail = problem(http.post(CONFIGS, content=body, headers=headers), 422, "body")["detail"]
        assert f"sent with {named}: send it as JSON, Content-Type: application/json" in detail
    assert _count(http, CONFIGS) == before


# ------------------------------------------------------------------------ dates, rows
EARLY = "0001-01-01T00:00:00+14:00"  # before 0001-01-01 in UTC
LATE = "9999-12-31T23:59:59-14:00"  # after 9999-12-31 in UTC


@pytest.mark.parametrize(("field", "value"), [("startDate", EARLY), ("endDate", LATE)])
def test_effective_dates_outside_utc_are_422(
    http: httpx.Client, orders: str, field: str, value: str
) -> None:
    before = _count(http, CONFIGS)
    body = {
        "name": "far",
        "templateId": orders,
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
        field: value,
    }
    assert "out of range" in problem(http.post(CONFIGS, json=body), 422, field)["detail"]
    assert _count(http, CONFIGS) == before
    cfg = _configuration(http, orders, f"far_{field}")
    problem(http.patch(f"{CONFIGS}/{cfg}", json={field: value}), 422, field)


@pytest.mark.parametrize(("field", "value"), [("dateFrom", EARLY), ("dateTo", LATE)])
def test_date_ranges_outside_utc_are_422(
    http: httpx.Client, orders: str, field: str, value: str
) -> None:
    cfg = _configuration(http, orders, f"range_{field}")
    problem(http.post(f"{CONFIGS}/{cfg}/executions", json={field: value}), 422, field)
    assert _count(http, f"{CONFIGS}/{cfg}/executions") == 0
    # ... and as the configuration's default range
    problem(http.patch(f"{CONFIGS}/{cfg}", json={field: value}), 422, field)


def test_the_last_day_of_the_calendar_is_a_valid_end(http: httpx.Client, orders: str) -> None:
    cfg = _configuration(http, orders, "until_the_end")
    details = _run(http, cfg, dateFrom="0001-01-01", dateTo="9999-12-31")
    assert details["latestStatus"] == "COMPLETED"
    assert details["latestRecordCount"] == 30


@pytest.mark.parametrize("value", [{"id": 1}, [1, 2], []])
def test_selected_rows_must_hold_single_values(
    http: httpx.Client, orders: str, value: object
) -> None:
    """Objects or arrays used to be accepted (202) and then fail the run ("internal error")."""
    cfg = _configuration(http, orders, f"rows_{type(value).__name__}_{len(value)}")  # type: ignore[arg-type]
    r = http.post(
        f"{CONFIGS}/{cfg}/executions", json={"selectAll": False, "rows": [{"id": 1}, {"id": value}]}
    )
    assert "single value" in problem(r, 422, "rows.1.id")["detail"]
    assert _count(http, f"{CONFIGS}/{cfg}/executions") == 0


# --------------------------------------------------------------------------- file names
def test_long_names_keep_their_extension(http: httpx.Client, orders: str) -> None:
    name = "Zürich_orders_" + "é" * 186  # 200 characters, 386 bytes
    cfg = _configuration(
        http,
        orders,
        name,
        compression="gzip",
        fileNamePattern="{configurationName}_" + "x" * 150 + "_{run}.{ext}",
    )
    details = _run(http, cfg)
    assert details["latestStatus"] == "COMPLETED", details
    file_name = details["runs"][0]["file"]["name"]
    assert file_name.startswith("Zürich_orders_éé") and file_name.endswith(".csv.gz")
    assert len(file_name.encode()) <= 255
    got = http.get(details["runs"][0]["file"]["downloadUrl"])
    assert (
        got.status_code == 200
        and got.headers["etag"].strip('"') == details["runs"][0]["file"]["sha256"]
    )


def test_long_split_values_keep_their_extension(http: httpx.Client, orders: str) -> None:
    cfg = _configuration(http, orders, "s" * 200, splitBy="customer_email")
    details = _run(http, cfg)
    assert details["latestStatus"] == "COMPLETED", details
    names = [s["file"]["name"] for s in details["subExtracts"]]
    assert len(names) == len(set(names)) > 1
    assert all(n.endswith(".csv") and len(n.encode()) <= 255 for n in names)


@pytest.mark.parametrize("pattern", ["{ext}", ".{ext}", "{ext}.{ext}"])
def test_a_pattern_without_a_stem_is_refused(http: httpx.Client, orders: str, pattern: str) -> None:
    body = {
        "name": "stemless",
        "templateId": orders,
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
        "fileNamePattern": pattern,
    }
    r = http.post(CONFIGS, json=body)
    assert "name before the extension" in problem(r, 422, "fileNamePattern")["detail"]
    cfg = _configuration(http, orders, f"stemless_{len(pattern)}")
    problem(http.patch(f"{CONFIGS}/{cfg}", json={"fileNamePattern": pattern}), 422)


# -------------------------------------------------------------- item 8: storage namespaces
def _second_workspace(server: Server) -> tuple[str, str, str]:
    """(workspace id of the bootstrap token, id of a new workspace, an admin token of it)."""
    other = create_workspace(server, "other")
    token = create_token(server, "other", "admin")
    engine = make_engine(f"sqlite:///{server.data_dir / 'egress.db'}")
    try:
        return WorkspaceRepo(engine).ensure_workspace("default"), other, token
    finally:
        engine.dispose()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_workspaces_write_to_their_own_namespaces(server: Server, http: httpx.Client) -> None:
    """Same destination path, same configuration name, same second: two files, each under its
    own workspace's prefix, and B's never under A's."""
    ws_a, ws_b, token_b = _second_workspace(server)
    root = server.data_dir / "files"
    with api(server, token_b) as http_b:
        cfg_a = _configuration(http, _sqlite_template(http, server, "ns"), "same_name")
        cfg_b = _configuration(http_b, _sqlite_template(http_b, server, "ns"), "same_name")
        run_a = _run(http, cfg_a)["runs"][0]
        run_b = _run(http_b, cfg_b)["runs"][0]
        files = _files(root)
        a = {f for f in files if "same_name" in f and f.startswith(f"{ws_a}/")}
        b = {f for f in files if "same_name" in f and f.startswith(f"{ws_b}/")}
        assert {f"{ws_a}/out/{run_a['file']['name']}"} <= a
        assert {f"{ws_b}/out/{run_b['file']['name']}"} <= b
        assert len(a) == len(b) == 2  # the file and its manifest each
        assert all(f.startswith((f"{ws_a}/", f"{ws_b}/")) for f in files), files
        # Each workspace downloads its own bytes.
        got_b = http_b.get(run_b["file"]["downloadUrl"])
        assert got_b.status_code == 200
        assert got_b.headers["etag"].strip('"') == run_b["file"]["sha256"]
        # B cannot reach A's execution at all.
        problem(http_b.get(run_a["file"]["downloadUrl"].replace(cfg_b, cfg_a)), 404)


def test_runs_recorded_before_namespaces_keep_their_keys(
    server: Server, http: httpx.Client
) -> None:
    """A run recorded with an old-style key (no workspace prefix) still downloads."""
    cfg = _configuration(http, _sqlite_template(http, server, "legacy"), "legacy")
    details = _run(http, cfg)
    file = details["runs"][0]["file"]
    root = server.data_dir / "files"
    (new_key,) = [f for f in _files(root) if f.endswith(f"/out/{file['name']}")]
    old_key = f"out/{file['name']}"
    (root / "out").mkdir(mode=0o700, exist_ok=True)
    (root / new_key).rename(root / old_key)
    engine = make_engine(f"sqlite:///{server.data_dir / 'egress.db'}")
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                sa.text("UPDATE run_files SET storage_key = :old WHERE storage_key = :new"),
                {"old": old_key, "new": new_key},
            ).rowcount
        assert changed == 1
    finally:
        engine.dispose()
    got = http.get(file["downloadUrl"])
    assert got.status_code == 200
    assert got.headers["etag"].strip('"') == file["sha256"]
    assert int(got.headers["content-length"]) == file["sizeBytes"]


# ---------------------------------------------------------------------------- file modes
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_dir_and_everything_in_it_are_private(server: Server, http: httpx.Client) -> None:
    tpl = _sqlite_template(http, server, "modes")
    details = _run(http, _configuration(http, tpl, "modes"))
    assert details["latestStatus"] == "COMPLETED"
    loaded = _run(
        http,
        _configuration(
            http, tpl, "modes_table", destination={"type": "dataTable", "dataTable": "modes"}
        ),
    )
    assert loaded["latestStatus"] == "COMPLETED"

    data = server.data_dir
    assert _mode(data) == 0o700
    for name in ("egress.db", "egress.db-wal", "egress.db-shm", "warehouse.db", "secret.key"):
        assert (data / name).exists(), name
        assert _mode(data / name) == 0o600, name
    files = data / "files"
    written = [p for p in files.rglob("*") if "modes" in p.name]
    assert written  # the file and its manifest
    for path in files.rglob("*"):
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert _mode(files) == 0o700


# ------------------------------------------------------------------- temporary folders
@pytest.fixture
def pg_source(pg_db: PgDatabase) -> PgDatabase:
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE few AS SELECT g AS id FROM generate_series(1, 50) g")
        # ~5 ms of sleep every 100 rows: a run stays IN_PROGRESS for ~5 s, long enough to be
        # cancelled; 300 bytes a row pass the sink's 8 MiB buffer early, so its temporary
        # file is on disk by then.
        conn.execute(
            "CREATE VIEW slow AS SELECT g AS id, repeat('x', 300) AS pad,"
            " CASE WHEN g % 100 = 0 THEN pg_sleep(0.005)::text END AS pause"
            " FROM generate_series(1, 100000) g"
        )
        # Fails after ~12 MB have been written to the temporary file.
        conn.execute(
            "CREATE VIEW broken AS SELECT g AS id, repeat('x', 4000) AS pad,"
            " (1 / (3000 - g))::text AS x FROM generate_series(1, 5000) g"
        )
    return pg_db


def _temporary_folders(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.parts)


def test_no_empty_temporary_folders_remain_whatever_the_outcome(
    tmp_path: Path, pg_source: PgDatabase
) -> None:
    """Completed, no data, failed, cancelled while writing, and handed back at shutdown:
    none leaves a folder under `.tmp` (the report counted 77 after 90 runs)."""
    server = start_server(
        tmp_path, env_extra={"EGRESS_BATCH_ROWS": "500", "EGRESS_SHUTDOWN_GRACE_S": "0"}
    )
    root = server.data_dir / "files"
    try:
        with api(server) as http:
            settings = {
                "host": "127.0.0.1",
                "port": 5432,
                "database": pg_source.name,
                "user": "postgres",
            }
            r = http.post(
                f"{API}/connections",
                json={"name": "pg", "type": "postgresql", "settings": settings},
            )
            assert r.status_code == 201, r.text
            conn = r.json()["id"]
            few = _configuration(http, template(http, conn, "public.few")["id"], "few")
            broken = _configuration(http, template(http, conn, "public.broken")["id"], "broken")
            slow = _configuration(http, template(http, conn, "public.slow")["id"], "slow")
            outcomes = []
            for _ in range(3):
                outcomes.append(_run(http, few)["latestStatus"])
                outcomes.append(_run(http, few, whereClause="id < 0")["latestStatus"])
                failed = _run(http, broken)
                assert "division by zero" in failed["runs"][0]["errorMessage"]
                outcomes.append(failed["latestStatus"])
                outcomes.append(_cancel_while_writing(http, slow, root))
            assert outcomes == ["COMPLETED", "COMPLETED_NO_DATA", "FAILED", "CANCELLED"] * 3
            assert _temporary_folders(root) == []
            # Shutdown with a run writing: the worker hands it back (PENDING) and cleans up.
            eid = http.post(f"{CONFIGS}/{slow}/executions").json()["id"]
            _wait_writing(http, slow, eid, root)
    finally:
        stop_server(server)
    assert_clean_log(server.log())
    assert _temporary_folders(root) == []


def _wait_writing(http: httpx.Client, cfg: str, eid: str, root: Path) -> None:
    """Until the run is IN_PROGRESS with records read and its temporary file exists."""
    deadline = time.monotonic() + 30
    while True:
        details = http.get(f"{CONFIGS}/{cfg}/executions/{eid}").json()
        progress = details.get("progress") or {}
        if progress.get("processed") and any(
            p.is_file() for p in root.rglob("*") if ".tmp" in p.parts
        ):
            return
        assert details["latestStatus"] in {"PENDING", "IN_PROGRESS"}, details
        assert time.monotonic() < deadline, details
        time.sleep(0.02)


def _cancel_while_writing(http: httpx.Client, cfg: str, root: Path) -> str:
    eid = http.post(f"{CONFIGS}/{cfg}/executions").json()["id"]
    _wait_writing(http, cfg, eid, root)
    assert http.post(f"{CONFIGS}/{cfg}/executions/{eid}/cancel").status_code == 202
    return str(wait_for_status(http, cfg, eid, DONE)["latestStatus"])


# ------------------------------------------------------------------ free-form client JSON
def test_additional_params_are_bounded_so_every_response_can_show_them(
    http: httpx.Client, orders: str
) -> None:
    """Seed 001's additional_params takes any JSON: one nested 400 levels deep was stored, then
    the create, GET of the extract and the workspace's lists on both faces answered 500 (the
    serializer's depth limit). Now it is refused at once and nothing is stored."""
    url = "/api/v3.1/extracts/"
    before = _count(http, CONFIGS)
    deep = "[" * 400 + "]" * 400
    body = (
        f'{{"data_table_title": "deep_params", "template_id": "{orders}",'
        f' "template_settings": {{"additional_params": {{"a": {deep}}}}}}}'
    )
    r = http.post(url, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert "nests deeper than 32 levels" in r.text
    assert "additional_params" in r.text
    big = {"a": "x" * (64 << 10)}
    r = http.post(
        url,
        json={
            "data_table_title": "big_params",
            "template_id": orders,
            "template_settings": {"additional_params": big},
        },
    )
    assert r.status_code in (400, 422) and "larger than 65536 bytes" in r.text, r.text
    assert _count(http, CONFIGS) == before
    assert http.get("/api/v3/extracts").status_code == 200
    nested: object = 1
    for _ in range(31):  # 31 lists inside the object: 32 levels
        nested = [nested]
    r = http.post(
        url,
        json={
            "data_table_title": "deep_enough",
            "template_id": orders,
            "template_settings": {"additional_params": {"a": nested}},
        },
    )
    assert r.status_code == 201, r.text
    extract = r.json()
    assert extract["additional_params"] == {"a": nested}
    one = f"/api/v3/extracts/{extract['id']}"
    r = http.patch(one, json={"additional_params": {"a": [nested]}})
    assert r.status_code in (400, 422) and "nests deeper than 32 levels" in r.text, r.text
    assert http.get(one).json()["additional_params"] == {"a": nested}
