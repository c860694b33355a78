"""Shared fixtures: real PostgreSQL databases, SQLite files, a real server on a free port, and
an S3 endpoint (moto_server).

PostgreSQL: EGRESS_TEST_POSTGRES_URL if set, else the server on 127.0.0.1:5432 (started by
scripts/services.sh, which `make test` runs first). With CI=true a missing server (or a
moto_server that does not start) fails the run instead of skipping.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pymysql
import pytest
import sqlalchemy as sa

from egress.container import Container
from egress.db.migrate import upgrade
from egress.settings import Settings
from tests.support.listeners import free_port
from tests.support.migrated import copy_migrated, migrate
from tests.support.policy import files_root
from tests.support.s3 import S3Server, S3Unavailable, start_s3_server

ADMIN_URL = os.environ.get(
    "EGRESS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI") == "true"
MYSQL = {
    "host": os.environ.get("EGRESS_TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("EGRESS_TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("EGRESS_TEST_MYSQL_USER", "root"),
    "password": os.environ.get("EGRESS_TEST_MYSQL_PASSWORD", ""),
}


def _postgres_available() -> str | None:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


# Slowest first: with `make test`'s processes (pytest-xdist, a module per process at a time) a
# long module collected last would run alone at the end while the other processes idle.
_FOLDER_ORDER = ("security", "e2e", "integration", "unit")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def folder(item: pytest.Item) -> int:
        parts = item.path.relative_to(Path(__file__).parent).parts
        return _FOLDER_ORDER.index(parts[0]) if parts[0] in _FOLDER_ORDER else len(_FOLDER_ORDER)

    items.sort(key=folder)  # stable: each module keeps its own order


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI and not reachable: {problem}")
        pytest.skip(f"PostgreSQL not reachable ({problem}); run scripts/services.sh")
    return ADMIN_URL


@dataclass(frozen=True)
class PgDatabase:
    name: str
    url: str  # libpq URL

    @property
    def sqlalchemy_url(self) -> str:
        return self.url.replace("postgresql://", "postgresql+psycopg://", 1)

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def end_connections(self) -> None:
        """End every session still open on this database once its test is over. A finished
        test's containers, pools and idle source sessions (kept 10 s for reuse) stay open
        until garbage collection, and three test processes' leftovers together reached the
        server's 100 connections ("too many clients" in unrelated tests). The database itself
        is dropped at the end of the session (``pg_factory``)."""
        admin = self.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )


@pytest.fixture(scope="session")
def pg_factory(postgres_admin_url: str) -> Iterator[object]:
    """Creates throwaway databases; drops them all after the session (in the background)."""
    created: list[str] = []

    def make(prefix: str = "egress_t", template: str = "template1") -> PgDatabase:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(postgres_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')  # type: ignore[arg-type]
        created.append(name)
        base = postgres_admin_url.rsplit("/", 1)[0]
        return PgDatabase(name=name, url=f"{base}/{name}")

    yield make
    # Each DROP DATABASE waits for a checkpoint (~0.2 s): a run's hundreds of them took 150 s at
    # the end of the session. A detached process drops them while the run reports and exits.
    subprocess.Popen(
        [sys.executable, "-c", _DROP_DATABASES, postgres_admin_url, *created],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


_DROP_DATABASES = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for name in sys.argv[2:]:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""


@dataclass(frozen=True)
class MysqlDatabase:
    name: str

    @property
    def settings(self) -> dict[str, object]:
        return {
            "host": MYSQL["host"],
            "port": MYSQL["port"],
            "database": self.name,
            "user": MYSQL["user"],
        }

    @property
    def secrets(self) -> dict[str, str]:
        return {"password": str(MYSQL["password"])} if MYSQL["password"] else {}

    def connect(self) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=str(MYSQL["host"]),
            port=int(MYSQL["port"]),
            user=str(MYSQL["user"]),
            password=str(MYSQL["password"]),
            database=self.name,
            charset="utf8mb4",
            autocommit=True,
        )

    def user(self, *grants: str) -> tuple[dict[str, Any], dict[str, str]]:
        """A user who may read this database (plus ``grants`` on every one): its connection
        settings and secrets."""
        user, password = f"egress_{secrets.token_hex(4)}", secrets.token_hex(8)
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (password,))
            cur.execute(f"GRANT SELECT ON `{self.name}`.* TO '{user}'@'%'")
            for grant in grants:
                cur.execute(f"GRANT {grant} ON *.* TO '{user}'@'%'")
        return {**self.settings, "user": user}, {"password": password}

    def drop_user(self, settings: dict[str, Any]) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(f"DROP USER '{settings['user']}'@'%'")


@pytest.fixture(scope="session")
def mysql_factory() -> Iterator[object]:
    """Throwaway MariaDB/MySQL databases (dropped at the end of the session)."""
    try:
        admin = pymysql.connect(
            host=str(MYSQL["host"]),
            port=int(MYSQL["port"]),
            user=str(MYSQL["user"]),
            password=str(MYSQL["password"]),
            autocommit=True,
            connect_timeout=3,
        )
    except pymysql.Error as exc:
        if IN_CI:
            pytest.fail(f"MariaDB/MySQL is required in CI and not reachable: {exc}")
        pytest.skip(f"MariaDB/MySQL not reachable ({exc}); run scripts/services.sh")
    created: list[str] = []

    def make(prefix: str = "egress_m") -> MysqlDatabase:
        name = f"{prefix}_{secrets.token_hex(4)}"
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        created.append(name)
        return MysqlDatabase(name)

    yield make
    with admin.cursor() as cur:
        for name in created:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    admin.close()


@pytest.fixture
def mysql_db(mysql_factory: object) -> MysqlDatabase:
    return mysql_factory()  # type: ignore[operator,no-any-return]


@pytest.fixture
def mysql_reader(mysql_db: MysqlDatabase) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """Settings and secrets of a user who may only read ``mysql_db``. Without PROCESS an
    incremental run cannot see open transactions and relies on its lag alone: a test of the
    window's mechanics then does not depend on what other sessions of the shared server (other
    pytest-xdist processes) hold open. With PROCESS, any writing transaction open on the server
    holds the mark, as it should (tests/integration/test_incremental.py)."""
    settings, user_secrets = mysql_db.user()
    yield settings, user_secrets
    mysql_db.drop_user(settings)


@pytest.fixture
def pg_db(pg_factory: object) -> Iterator[PgDatabase]:
    db: PgDatabase = pg_factory()  # type: ignore[operator]
    yield db
    db.end_connections()


@pytest.fixture(scope="session")
def pg_migrated(pg_factory: Any) -> str:
    """A PostgreSQL database migrated to head once, the template of ``metadata_url``'s."""
    db: PgDatabase = pg_factory("egress_migrated")
    upgrade(db.sqlalchemy_url)
    return db.name


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty metadata database on each backend (a copy of one migrated once)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
        migrate(url)
        return url
    template = request.getfixturevalue("pg_migrated")
    db: PgDatabase = request.getfixturevalue("pg_factory")("egress_meta", template)
    request.addfinalizer(db.end_connections)
    return db.sqlalchemy_url


def make_settings(tmp_path: Path, database_url: str | None = None, **extra: object) -> Settings:
    extra.setdefault("files_roots", str(files_root(tmp_path)))
    # Tests revoke and expect the next request to see it; the cache's own window is tested
    # with an injected clock (tests/unit/test_revocation.py, test_credential_cache.py).
    extra.setdefault("revocation_cache_s", 0)
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key=None,
        bootstrap_token=None,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def container(tmp_path: Path, metadata_url: str) -> Iterator[Container]:
    c = Container.build(make_settings(tmp_path, metadata_url, poll_s=0.05, heartbeat_s=0.2))
    yield c
    c.engine.dispose()


@dataclass
class Server:
    base_url: str
    token: str
    process: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)  # the process's: `egress admin` reuses it

    def client(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=30,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(
    tmp_path: Path,
    env_extra: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    *,
    fresh: bool = False,
) -> Server:
    """`egress serve` as a real process on a free port; waits for /healthz. Its metadata
    database is a migrated copy unless ``fresh`` (then the server creates and migrates it)."""
    port = free_port()
    token = secrets.token_hex(16)
    data_dir = tmp_path / "server-data"
    if not fresh and not {"EGRESS_DATABASE_URL", "EGRESS_DATA_DIR"} & set(env_extra or {}):
        # The server still runs its migrations at start: from head, they have nothing to do.
        copy_migrated(data_dir / "egress.db")
    env = {
        **os.environ,
        "EGRESS_DATA_DIR": str(data_dir),
        "EGRESS_PORT": str(port),
        "EGRESS_BOOTSTRAP_TOKEN": token,
        "EGRESS_POLL_S": "0.1",
        "EGRESS_HEARTBEAT_S": "0.2",
        "EGRESS_LOG_LEVEL": "INFO",
        "EGRESS_ACCESS_LOG": "true",  # the log check of tests/e2e/helpers.py looks for 5xx in it
        "EGRESS_FILES_ROOTS": str(files_root(tmp_path)),
        "EGRESS_REVOCATION_CACHE_S": "0",  # revocation seen on the next request (make_settings)
        # One token and one address drive a whole module here (fuzzing, the credential
        # matrix): the fair-use limits would answer 429 to the tests' own volume. The limits
        # are tested by tests/e2e/test_limits_http.py, which sets its own.
        "EGRESS_TRIGGERS_PER_MINUTE": "1000000",
        "EGRESS_FAILED_SIGNINS_PER_MINUTE": "1000000",
        **(env_extra or {}),
    }
    log_path = tmp_path / f"server-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "egress.cli.main", "serve", *args],
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", token, process, data_dir, log_path, env)
    # Generous: migrating a fresh database takes over 30 s when the machine is loaded, and a
    # server that cannot start exits early (reported at once above).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start:\n{server.log()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One moto S3 server for the session; tests take fresh buckets from it (``new_bucket``)."""
    try:
        s3 = start_s3_server(free_port(), tmp_path_factory.mktemp("moto"))
    except S3Unavailable as exc:
        if IN_CI:
            pytest.fail(f"moto_server is required in CI and did not start: {exc}")
        pytest.skip(f"moto_server did not start ({exc}); install the dev extra (moto[server])")
    yield s3
    s3.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real `egress serve` (SQLite metadata, local files, embedded worker)."""
    s = start_server(tmp_path)
    yield s
    stop_server(s)


def wait_for_status(
    client: httpx.Client, config_id: str, execution_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, object]:
    """Poll execution details until latestStatus is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/extraction-configurations/{config_id}/executions/{execution_id}")
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        if body["latestStatus"] in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"still {body['latestStatus']} after {timeout}s: {body}")
        time.sleep(0.05)


__all__ = [
    "PgDatabase",
    "Server",
    "make_settings",
    "sa",
    "start_server",
    "stop_server",
    "wait_for_status",
]
