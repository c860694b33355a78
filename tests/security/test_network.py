"""Network trust of PostgreSQL and MySQL connections, against a real server (issue 10, items
2, 4 and 7, and the /test answer): secrets bound to the address they were entered for, every
connection under a timeout, interactive calls in a bounded pool (429) that never starves the
API, denied and own addresses, generic connection errors, and least-privilege warnings."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from egress.sources.base import (
    AUTHENTICATION_FAILED,
    COULD_NOT_CONNECT,
    DATABASE_NOT_FOUND,
    TIMED_OUT,
)
from egress.sources.mysql import BAD_SSL_CA, NOT_MYSQL
from egress.sources.mysql import SUPERUSER_WARNING as MYSQL_SUPERUSER
from egress.sources.mysql.transactions import PROCESS_WARNING as MYSQL_NO_PROCESS
from egress.sources.postgresql import NOT_POSTGRES, WRITER_WARNING
from egress.sources.postgresql import SUPERUSER_WARNING as PG_SUPERUSER
from tests.conftest import MysqlDatabase, PgDatabase, Server, free_port
from tests.e2e.helpers import API, api, problem, running_server
from tests.support.listeners import listening

TIMEOUT_S = 2
POOL = 4
OLD_SECRET = "old-secret-" + secrets.token_hex(8)
NEW_SECRET = "new-secret-" + secrets.token_hex(8)
BANNER = b"HTTP/1.1 400 Bad Request\r\nServer: XYZZY-banner/1.0\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"EGRESS_SOURCE_TIMEOUT_S": str(TIMEOUT_S), "EGRESS_SOURCE_POOL_SIZE": str(POOL)}
    with running_server(
        tmp_path_factory.mktemp("network"), env=env, secrets=(OLD_SECRET, NEW_SECRET)
    ) as s:
        yield s


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with api(server) as client:
        yield client


def connection(
    http: httpx.Client, type_: str, secrets_: dict[str, str] | None = None, **settings: Any
) -> str:
    body = {
        "name": f"{type_}_{secrets.token_hex(4)}",
        "type": type_,
        "settings": settings,
        "secrets": secrets_ or {},
    }
    r = http.post(f"{API}/connections", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def pg(http: httpx.Client, port: int = 5432, **settings: Any) -> str:
    defaults = {"host": "127.0.0.1", "port": port, "database": "postgres", "user": "postgres"}
    return connection(http, "postgresql", **{**defaults, **settings})


def test_changing_the_address_without_the_secrets_is_refused(
    http: httpx.Client, pg_db: PgDatabase
) -> None:
    """An admin moving a connection to a server of theirs must not receive the stored
    password: without the secrets the change is a 422 and nothing reaches the new address;
    with them, the new secrets replace the old ones (never merged)."""
    cid = connection(
        http,
        "postgresql",
        {"password": OLD_SECRET},
        host="127.0.0.1",
        port=5432,
        database=pg_db.name,
        user="postgres",
    )
    with listening("postgres") as fake:
        moved = {"host": "localhost", "port": fake.port, "database": pg_db.name, "user": "postgres"}
        body = problem(
            http.patch(f"{API}/connections/{cid}", json={"settings": moved}), 422, "secrets"
        )
        assert "re-enter the secrets when the address changes" in body["detail"]
        for change in ({"database": "postgres"}, {"user": "other"}, {"host": "localhost"}):
            settings = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name}
            settings |= {"user": "postgres", **change}
            r = http.patch(f"{API}/connections/{cid}", json={"settings": settings})
            problem(r, 422, "secrets")
        # Nothing moved: the test still reaches the real server, the fake one saw nobody.
        assert http.post(f"{API}/connections/{cid}/test").json()["ok"] is True
        # A change that keeps the address keeps the secrets.
        same = {"host": "127.0.0.1", "port": 5432, "database": pg_db.name, "user": "postgres"}
        kept = http.patch(
            f"{API}/connections/{cid}",
            json={"name": "renamed", "settings": same | {"sslmode": "disable"}},
        )
        assert kept.status_code == 200 and kept.json()["secretNames"] == ["password"]
        assert fake.accepted == 0 and not fake.received

        # With the secrets sent again, the move is allowed and only the new ones go there.
        r = http.patch(
            f"{API}/connections/{cid}",
            json={"settings": moved, "secrets": {"password": NEW_SECRET}},
        )
        assert r.status_code == 200, r.text
        tested = http.post(f"{API}/connections/{cid}/test").json()
        assert tested["ok"] is False
        deadline = time.monotonic() + 10
        while NEW_SECRET.encode() not in fake.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert NEW_SECRET.encode() in fake.received
        assert OLD_SECRET.encode() not in fake.received


def test_a_connection_without_secrets_moves_freely_and_sent_secrets_replace(
    http: httpx.Client,
) -> None:
    cid = pg(http)
    moved = {"host": "localhost", "port": 5432, "database": "template1", "user": "postgres"}
    r = http.patch(f"{API}/connections/{cid}", json={"settings": moved})
    assert r.status_code == 200 and r.json()["secretNames"] == []
    with_secret = http.patch(f"{API}/connections/{cid}", json={"secrets": {"password": "x"}})
    assert with_secret.json()["secretNames"] == ["password"]
    # Moving with an empty set of secrets clears the stored ones.
    back = {"settings": moved | {"database": "postgres"}, "secrets": {}}
    r = http.patch(f"{API}/connections/{cid}", json=back)
    assert r.status_code == 200 and r.json()["secretNames"] == []


def _timed(call: Any) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    response = call()
    return time.monotonic() - started, response


def test_hanging_sources_time_out_fill_the_pool_and_never_starve_the_api(
    server: Server, http: httpx.Client
) -> None:
    """The issue's scenario: many concurrent /test calls on MySQL and PostgreSQL connections
    aimed at a port that accepts and never answers. Each answers within about the timeout,
    those beyond the pool are 429 at once, and /healthz and normal reads stay fast."""
    with listening("silent") as silent:
        mysql = connection(
            http, "mysql", host="127.0.0.1", port=silent.port, database="d", user="u"
        )
        postgres = pg(http, port=silent.port)
        stop = threading.Event()
        slowest: list[float] = []

        def watch() -> None:
            with httpx.Client(base_url=server.base_url, timeout=10) as probe:
                while not stop.is_set():
                    took, r = _timed(lambda: probe.get("/healthz"))
                    took2, r2 = _timed(
                        lambda: probe.get(
                            f"{API}/connections",
                            headers={"Authorization": f"Bearer {server.token}"},
                        )
                    )
                    assert r.status_code == 200 and r2.status_code == 200
                    slowest.append(max(took, took2))
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with (
                ThreadPoolExecutor(24) as pool,
                httpx.Client(
                    base_url=server.base_url,
                    headers={"Authorization": f"Bearer {server.token}"},
                    timeout=60,
                ) as client,
            ):
                calls = [
                    pool.submit(_timed, lambda c=cid: client.post(f"{API}/connections/{c}/test"))
                    for cid in [mysql, postgres] * 12
                ]
                results = [f.result() for f in calls]
        finally:
            stop.set()
            watcher.join()

    answered = [(took, r.json()) for took, r in results if r.status_code == 200]
    busy = [(took, r) for took, r in results if r.status_code == 429]
    assert len(answered) + len(busy) == len(results), [r.status_code for _, r in results]
    assert 1 <= len(answered) and len(busy) >= len(results) - POOL * 2
    for took, body in answered:
        assert body == {"ok": False, "error": TIMED_OUT, "warnings": []}
        assert took < TIMEOUT_S + 5
    for took, r in busy:
        assert r.headers["content-type"] == "application/problem+json"
        assert int(r.headers["Retry-After"]) == TIMEOUT_S
        assert took < 2
    assert slowest and max(slowest) < 1.5, max(slowest)
    # Once the calls are over the pool is free again.
    assert http.post(f"{API}/connections/{mysql}/test").status_code == 200


def test_foreign_services_are_not_echoed(server: Server, http: httpx.Client) -> None:
    """/test is no port scanner: a service's greeting never reaches the client, only a
    generic class; the driver's own words go to the server log."""
    with listening("greeting", BANNER) as http_port:
        mysql = connection(
            http, "mysql", host="127.0.0.1", port=http_port.port, database="d", user="u"
        )
        postgres = pg(http, port=http_port.port)
        for cid, expected in ((mysql, NOT_MYSQL), (postgres, NOT_POSTGRES)):
            r = http.post(f"{API}/connections/{cid}/test")
            assert r.json() == {"ok": False, "error": expected, "warnings": []}
            browse = problem(http.get(f"{API}/connections/{cid}/elements"), 422, "connection")
            for text in (r.text, str(browse)):
                assert "XYZZY" not in text and "HTTP" not in text and "received H" not in text
    assert "received invalid response to SSL negotiation: H" in server.log()


def test_connection_errors_are_generic_classes(
    http: httpx.Client, mysql_db: MysqlDatabase, pg_db: PgDatabase
) -> None:
    closed = free_port()
    cases = [
        (pg(http, port=closed), COULD_NOT_CONNECT),
        (pg(http, user="nobody_" + secrets.token_hex(3)), AUTHENTICATION_FAILED),
        (pg(http, database="missing_" + secrets.token_hex(3)), DATABASE_NOT_FOUND),
        (
            connection(
                http, "mysql", host="127.0.0.1", port=closed, database=mysql_db.name, user="u"
            ),
            COULD_NOT_CONNECT,
        ),
        (
            connection(
                http,
                "mysql",
                {"password": "wrong-" + secrets.token_hex(3)},
                **{**mysql_db.settings, "user": "nobody_" + secrets.token_hex(3)},
            ),
            AUTHENTICATION_FAILED,
        ),
        (
            connection(
                http, "mysql", mysql_db.secrets, **{**mysql_db.settings, "database": "nope_x1"}
            ),
            DATABASE_NOT_FOUND,
        ),
    ]
    for cid, expected in cases:
        assert http.post(f"{API}/connections/{cid}/test").json() == {
            "ok": False,
            "error": expected,
            "warnings": [],
        }
        body = problem(http.get(f"{API}/connections/{cid}/elements"), 422, "connection")
        assert body["detail"] == f"the connection's source could not be read: {expected}"


def test_denied_addresses_are_refused_at_create(http: httpx.Client) -> None:
    for host in ("169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "fe80::1"):
        for type_ in ("postgresql", "mysql"):
            body = {
                "name": "metadata",
                "type": type_,
                "settings": {"host": host, "database": "d", "user": "u"},
            }
            r = problem(http.post(f"{API}/connections", json=body), 422, "settings.host")
            assert "host not allowed" in r["detail"]


def test_ssl_ca_missing_or_not_a_certificate_is_a_clear_answer(
    http: httpx.Client, mysql_db: MysqlDatabase, tmp_path: Path
) -> None:
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("hello\n")
    swapped = tmp_path / "swapped.pem"  # inside the roots when saved, a link out later
    answers = []
    for path in (tmp_path / "missing.pem", not_a_cert, tmp_path, swapped):
        settings = {**mysql_db.settings, "ssl": True, "ssl_ca": str(path)}
        cid = connection(http, "mysql", mysql_db.secrets, **settings)
        if path == swapped:  # a real CA bundle, but outside the files roots
            swapped.symlink_to("/etc/ssl/certs/ca-certificates.crt")
        r = http.post(f"{API}/connections/{cid}/test")
        assert r.status_code == 200
        answers.append(r.json())
    # The same answer for each: it tells nothing about the server's files.
    assert answers == [{"ok": False, "error": BAD_SSL_CA, "warnings": []}] * 4


def test_ssl_ca_outside_the_files_roots_is_refused_on_save(
    http: httpx.Client, mysql_db: MysqlDatabase
) -> None:
    for path in ("/dev/zero", "/etc/ssl/certs/ca-certificates.crt", "/tmp/../etc/passwd", "ca"):
        settings = {**mysql_db.settings, "ssl": True, "ssl_ca": path}
        body = {"name": f"ca {path}", "type": "mysql", "settings": settings}
        problem(http.post(f"{API}/connections", json=body), 422, "settings.ssl_ca")


def test_postgresql_warnings_advise_a_read_only_role(http: httpx.Client, pg_db: PgDatabase) -> None:
    reader, writer = (f"egress_{k}_{secrets.token_hex(3)}" for k in ("ro", "rw"))
    with pg_db.connect() as conn:
        conn.execute("CREATE TABLE t (id int)")
        for role in (reader, writer):
            conn.execute(f'CREATE ROLE "{role}" LOGIN')  # type: ignore[arg-type]
            conn.execute(f'GRANT SELECT ON t TO "{role}"')  # type: ignore[arg-type]
        conn.execute(f'GRANT INSERT ON t TO "{writer}"')  # type: ignore[arg-type]
    try:
        expected = {"postgres": [PG_SUPERUSER], reader: [], writer: [WRITER_WARNING]}
        for user, warnings in expected.items():
            cid = pg(http, database=pg_db.name, user=user)
            r = http.post(f"{API}/connections/{cid}/test")
            assert r.json() == {"ok": True, "error": None, "warnings": warnings}, user
    finally:
        with pg_db.connect() as conn:
            for role in (reader, writer):
                conn.execute(f'DROP OWNED BY "{role}"')  # type: ignore[arg-type]
                conn.execute(f'DROP ROLE "{role}"')  # type: ignore[arg-type]


def test_mysql_warnings_advise_a_read_only_user(
    http: httpx.Client, mysql_db: MysqlDatabase
) -> None:
    """Without PROCESS, /test also says incremental runs cannot see open transactions."""
    reader, watcher = (f"egress_{k}_{secrets.token_hex(3)}" for k in ("ro", "pr"))
    password = secrets.token_hex(8)
    with mysql_db.connect() as conn, conn.cursor() as cur:
        for user in (reader, watcher):
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT SELECT ON `{mysql_db.name}`.* TO '{user}'@'%'")
        cur.execute(f"GRANT PROCESS ON *.* TO '{watcher}'@'%'")
    try:
        root = connection(http, "mysql", mysql_db.secrets, **mysql_db.settings)
        assert http.post(f"{API}/connections/{root}/test").json() == {
            "ok": True,
            "error": None,
            "warnings": [MYSQL_SUPERUSER],
        }
        expected = {reader: [MYSQL_NO_PROCESS], watcher: []}
        for user, warnings in expected.items():
            settings = {**mysql_db.settings, "user": user}
            cid = connection(http, "mysql", {"password": password}, **settings)
            assert http.post(f"{API}/connections/{cid}/test").json() == {
                "ok": True,
                "error": None,
                "warnings": warnings,
            }, user
    finally:
        with mysql_db.connect() as conn, conn.cursor() as cur:
            for user in (reader, watcher):
                cur.execute(f"DROP USER '{user}'@'%'")


def test_egress_own_database_cannot_be_a_connection(tmp_path: Path, pg_factory: Any) -> None:
    """Metadata on PostgreSQL: a connection naming it (by another spelling of the host,
    too) is refused at create; another database on the same server is fine."""
    meta: PgDatabase = pg_factory("egress_own")
    env = {"EGRESS_DATABASE_URL": meta.sqlalchemy_url}
    with running_server(tmp_path, env=env) as s, api(s) as http:
        for host in ("127.0.0.1", "localhost"):
            body = {
                "name": "own",
                "type": "postgresql",
                "settings": {"host": host, "database": meta.name, "user": "postgres"},
            }
            r = problem(http.post(f"{API}/connections", json=body), 422, "settings.database")
            assert "own metadata or warehouse database" in r["detail"]
        assert pg(http, database="postgres")
