"""Identity against a real server: tokens made by ``egress admin``, stored as HMACs, expiring and
revocable; editors kept out of connections and SQL templates; workspaces kept apart; signed
data-table cursors; and both key rings rotating without invalidating the other's values."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from egress.db.engine import make_engine
from egress.db.tables import api_tokens
from egress.signing import new_signing_key_entry
from tests.conftest import PgDatabase, Server, start_server, stop_server, wait_for_status
from tests.e2e.helpers import API, CONFIGS, DONE, api, assert_clean_log, problem, trigger
from tests.security.conftest import Tenants, make_tenants
from tests.support.identity import create_token, create_workspace, egress_admin

TOKEN_LINE = re.compile(r"egr_[A-Za-z0-9_-]{43}")
ADMIN_NEEDED = "creating, changing or deleting connections needs the admin role"


def _db(server: Server) -> sa.Engine:
    return make_engine(f"sqlite:///{server.data_dir}/egress.db")


def _stored(server: Server, token_id: str) -> sa.Row[Any]:
    engine = _db(server)
    with engine.connect() as conn:
        row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).one()
    engine.dispose()
    return row


def _token_id(server: Server, name: str) -> str:
    listing = egress_admin(server, "list-tokens").stdout
    return next(line.split()[0] for line in listing.splitlines() if f" {name} " in line)


def _shop(folder: Path, name: str = "shop.db", rows: int = 5) -> Path:
    path = folder / name
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (sku TEXT PRIMARY KEY, price INTEGER)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(f"s{i}", i) for i in range(rows)])
    conn.close()
    return path


@pytest.fixture(scope="module")
def a_connection(tenants: Tenants) -> str:
    """A SQLite connection of workspace A, made by A's admin."""
    with tenants.client(tenants.a.admin) as http:
        r = http.post(
            f"{API}/connections",
            json={
                "name": "shop",
                "type": "sqlite",
                "settings": {"path": str(_shop(tenants.sources))},
            },
        )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# --- egress admin ------------------------------------------------------------------------------


def test_create_token_prints_the_token_alone_on_the_last_line(tenants: Tenants) -> None:
    server = tenants.server
    made = egress_admin(
        server, "create-token", "--workspace", "alpha", "--role", "editor", "--name", "ci-job"
    )
    assert made.returncode == 0, made.stderr
    lines = made.stdout.rstrip("\n").splitlines()
    assert TOKEN_LINE.fullmatch(lines[-1]), made.stdout
    token = lines[-1]
    assert all(token not in line for line in lines[:-1])
    assert "editor" in lines[0] and "'alpha'" in lines[0] and "expires never" in lines[0]
    with tenants.client(token) as http:
        assert http.get(f"{API}/connections").status_code == 200

    listing = egress_admin(server, "list-tokens").stdout
    header, *rows = listing.splitlines()
    assert header.split() == ["id", "workspace", "name", "role", "created", "expires", "revoked"]
    mine = [r.split() for r in rows if " ci-job " in r]
    assert len(mine) == 1 and mine[0][1:4] == ["alpha", "ci-job", "editor"]
    assert mine[0][5:] == ["-", "-"]  # never expires, not revoked
    stored = _stored(server, mine[0][0])
    assert token not in listing and stored.token_hash not in listing
    only_beta = egress_admin(server, "list-tokens", "--workspace", "beta").stdout
    assert {r.split()[1] for r in only_beta.splitlines()[1:]} == {"beta"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create-workspace", "alpha"), "a workspace named 'alpha' already exists"),
        (("create-token", "--workspace", "nope", "--role", "admin"), "no workspace named 'nope'"),
        (("create-token", "--workspace", "alpha", "--role", "owner"), "unknown role 'owner'"),
        (
            ("create-token", "--workspace", "alpha", "--role", "admin", "--expires-in", "0"),
            "expiresIn: must be between 1 and 3650 days",
        ),
        (("list-tokens", "--workspace", "nope"), "no workspace named 'nope'"),
        (("revoke-token", "no-such-id"), "no token with id 'no-such-id'"),
    ],
)
def test_admin_command_errors_are_one_line_and_exit_1(
    tenants: Tenants, args: tuple[str, ...], message: str
) -> None:
    r = egress_admin(tenants.server, *args)
    assert r.returncode == 1, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr
    assert "egr_" not in r.stdout


def test_the_stored_hash_is_an_hmac_under_the_signing_key(tenants: Tenants) -> None:
    server = tenants.server
    token = create_token(server, "beta", "admin", "--name", "hashed")
    row = _stored(server, _token_id(server, "hashed"))
    assert row.token_hash != hashlib.sha256(token.encode()).hexdigest()
    key_id, encoded = (server.data_dir / "signing.key").read_text().strip().split(":")
    key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    message = b"api-token\0" + token.encode()
    assert row.key_id == key_id
    assert row.token_hash == hmac.new(key, message, hashlib.sha256).hexdigest()
    other_key = Fernet.generate_key()  # any other 32 bytes: the hash does not verify
    assert row.token_hash != hmac.new(other_key, message, hashlib.sha256).hexdigest()


def test_expired_and_revoked_tokens_are_401(tenants: Tenants) -> None:
    server = tenants.server
    expiring = create_token(server, "alpha", "editor", "--name", "short", "--expires-in", "1")
    revoked = create_token(server, "alpha", "admin", "--name", "leaked")
    expiring_id, revoked_id = _token_id(server, "short"), _token_id(server, "leaked")
    assert _stored(server, expiring_id).expires_at - datetime.now(UTC) > timedelta(hours=23)
    for token in (expiring, revoked):
        with tenants.client(token) as http:
            assert http.get(f"{API}/connections").status_code == 200

    # A day passes for the expiring token (moved into the past rather than waited for).
    engine = _db(server)
    with engine.begin() as conn:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == expiring_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    out = egress_admin(server, "revoke-token", revoked_id)
    assert out.returncode == 0 and "revoked token" in out.stdout, out.stderr

    for token, detail in ((expiring, "has expired"), (revoked, "has been revoked")):
        with tenants.client(token) as http:
            for r in (http.get(f"{API}/connections"), http.get(f"{CONFIGS}")):
                body = problem(r, 401)
                assert body["detail"] == f"the bearer token {detail}"
                assert r.headers["www-authenticate"].startswith("Bearer")
    listing = egress_admin(server, "list-tokens", "--workspace", "alpha").stdout
    leaked = next(line.split() for line in listing.splitlines() if " leaked " in line)
    assert leaked[-1] != "-"  # the revocation time


# --- roles -------------------------------------------------------------------------------------


def test_an_editor_may_not_manage_connections_or_sql_templates(
    tenants: Tenants, a_connection: str
) -> None:
    one = f"{API}/connections/{a_connection}"
    settings = {"path": str(_shop(tenants.sources, "editor.db"))}
    with tenants.client(tenants.a.editor) as editor:
        refused = [
            editor.post(
                f"{API}/connections", json={"name": "x", "type": "sqlite", "settings": settings}
            ),
            editor.patch(one, json={"name": "renamed"}),
            editor.patch(one, json={"settings": settings}),
            editor.delete(one),
        ]
        for r in refused:
            assert problem(r, 403)["detail"] == f"{ADMIN_NEEDED}; this token's role is 'editor'"
        sql = editor.post(
            f"{API}/templates",
            json={"connectionId": a_connection, "name": "q", "query": "SELECT sku FROM items"},
        )
        assert problem(sql, 403)["detail"].startswith("creating SQL templates needs the admin role")

        # Browsing, testing and everything outside connections and SQL templates stays open.
        assert editor.get(f"{API}/connections").json()["totalSize"] == 1
        assert editor.get(one).json()["name"] == "shop"
        assert editor.post(f"{one}/test").json()["ok"] is True
        elements = editor.get(f"{one}/elements")
        assert elements.status_code == 200 and elements.json()["data"][0]["children"]
        listed = editor.get(f"{API}/templates", params={"connectionId": a_connection})
        assert "main.items" in [t["name"] for t in listed.json()["data"]]
        custom = editor.post(
            f"{API}/templates",
            json={"connectionId": a_connection, "name": "mine", "table": "main.items"},
        )
        assert custom.status_code == 201, custom.text
        cfg = editor.post(
            CONFIGS,
            json={
                "name": "by-editor",
                "templateId": custom.json()["id"],
                "format": "csv",
                "destination": {"type": "storage", "path": "editor"},
            },
        )
        assert cfg.status_code == 201, cfg.text
    with tenants.client(tenants.a.admin) as admin:  # nothing the editor tried happened
        assert admin.get(one).json()["name"] == "shop"
        assert admin.patch(one, json={"name": "shop"}).status_code == 200


def test_another_workspace_gets_404_for_every_role(tenants: Tenants, a_connection: str) -> None:
    one = f"{API}/connections/{a_connection}"
    for token in (tenants.b.admin, tenants.b.editor):
        with tenants.client(token) as other:
            for r in (
                other.get(one),
                other.patch(one, json={"name": "mine"}),
                other.delete(one),
                other.post(f"{one}/test"),
                other.get(f"{one}/elements"),
                other.get(f"{API}/templates", params={"connectionId": a_connection}),
            ):
                assert problem(r, 404)["detail"], r.request.url
    with tenants.client(tenants.a.admin) as admin:
        assert admin.get(one).status_code == 200


# --- signed cursors ----------------------------------------------------------------------------


def _data_table(http: httpx.Client, connection: str, name: str) -> str:
    template = next(
        t
        for t in http.get(f"{API}/templates", params={"connectionId": connection}).json()["data"]
        if t["name"] == "main.items"
    )
    cfg = http.post(
        CONFIGS,
        json={
            "name": name,
            "templateId": template["id"],
            "format": "csv",
            "destination": {"type": "dataTable", "dataTable": name},
        },
    )
    assert cfg.status_code == 201, cfg.text
    cid = cfg.json()["id"]
    assert http.post(f"{CONFIGS}/{cid}/submit").status_code == 200
    done = wait_for_status(http, cid, trigger(http, cid)["id"], DONE)
    assert done["latestStatus"] == "COMPLETED", done
    return str(
        next(t["id"] for t in http.get(f"{API}/data-tables").json()["data"] if t["name"] == name)
    )


def test_data_table_cursors_are_signed(tenants: Tenants, a_connection: str) -> None:
    with tenants.client(tenants.a.editor) as http:
        first, second = (
            _data_table(http, a_connection, "one"),
            _data_table(http, a_connection, "two"),
        )
        rows = f"{API}/data-tables/{first}/rows"
        page = http.get(rows, params={"limit": 2}).json()
        cursor = page["nextCursor"]
        follow = http.get(rows, params={"limit": 2, "cursor": cursor}).json()
        assert [r["sku"] for r in page["data"] + follow["data"]] == ["s0", "s1", "s2", "s3"]

        key_id, payload, mac = cursor.split(".")
        forged_payload = base64.urlsafe_b64encode(
            json.dumps({"table": first, "after": ["s3"]}).encode()
        ).decode()
        bad = {
            'unsigned [{"a":1}]': base64.urlsafe_b64encode(b'[{"a":1}]').decode(),
            "garbage": "!!",
            "payload changed, signature kept": f"{key_id}.{forged_payload.rstrip('=')}.{mac}",
            "signature changed": f"{key_id}.{payload}.{mac[:-2]}AA",
            "unknown key": f"nokey.{payload}.{mac}",
        }
        for what, value in bad.items():
            body = problem(http.get(rows, params={"cursor": value}), 400, "query.cursor")
            assert body["errors"][0]["location"] == "query", what
            assert "not a cursor this endpoint returned" in body["detail"], what
        # A genuine cursor of another table is not this table's.
        problem(http.get(f"{API}/data-tables/{second}/rows", params={"cursor": cursor}), 400)
    with tenants.client(tenants.b.admin) as other:
        problem(other.get(rows, params={"cursor": cursor}), 404)


# --- key rings ---------------------------------------------------------------------------------


@pytest.fixture
def restarts(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers started one after another on one data dir; each is stopped and checked."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            stop_server(server)
        assert_clean_log(server.log())


def _start(tmp_path: Path, started: list[Server], **env: str) -> Server:
    server = start_server(tmp_path, env_extra=env)
    started.append(server)
    return server


def _pg_connection(http: httpx.Client, pg: PgDatabase) -> str:
    """A PostgreSQL connection with a sealed password (the test server trusts any password)."""
    r = http.post(
        f"{API}/connections",
        json={
            "name": "pg",
            "type": "postgresql",
            "settings": {
                "host": "127.0.0.1",
                "port": 5432,
                "database": pg.name,
                "user": "postgres",
            },
            "secrets": {"password": "pw-sealed-at-rest"},
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _still_works(server: Server, token: str, connection: str) -> None:
    """The token authenticates and the connection's secrets open (listing and using them)."""
    with api(server, token) as http:
        got = http.get(f"{API}/connections/{connection}")
        assert got.status_code == 200 and got.json()["secretNames"] == ["password"]
        tested = http.post(f"{API}/connections/{connection}/test").json()
        assert tested["ok"] is True, tested


def test_rotating_the_signing_keys_keeps_tokens_and_secrets(
    tmp_path: Path, restarts: list[Server], pg_db: PgDatabase
) -> None:
    k1, k2 = new_signing_key_entry(), new_signing_key_entry()
    first = _start(tmp_path, restarts, EGRESS_SIGNING_KEYS=k1)
    tenants = make_tenants(first)
    with api(first, tenants.a.admin) as http:
        connection = _pg_connection(http, pg_db)
    stop_server(first)

    rotated = _start(tmp_path, restarts, EGRESS_SIGNING_KEYS=f"{k2},{k1}")
    _still_works(rotated, tenants.a.admin, connection)
    admin_id = _token_id(rotated, "alpha-admin")
    assert _stored(rotated, admin_id).key_id == k2.split(":")[0]  # re-hashed on first use
    assert _stored(rotated, _token_id(rotated, "alpha-editor")).key_id == k1.split(":")[0]
    stop_server(rotated)

    # k1 retired: the token used under the ring (k2, k1) still works, one never used does not.
    retired = _start(tmp_path, restarts, EGRESS_SIGNING_KEYS=k2)
    _still_works(retired, tenants.a.admin, connection)
    with api(retired, tenants.a.editor) as http:
        problem(http.get(f"{API}/connections"), 401)


def test_rotating_the_secret_keys_keeps_tokens_and_secrets(
    tmp_path: Path, restarts: list[Server], pg_db: PgDatabase
) -> None:
    first = _start(tmp_path, restarts)  # generated secret.key and signing.key
    create_workspace(first, "alpha")
    token = create_token(first, "alpha", "admin")
    with api(first, token) as http:
        connection = _pg_connection(http, pg_db)
    stop_server(first)

    old = (first.data_dir / "secret.key").read_text().strip()
    new = Fernet.generate_key().decode()
    rotated = _start(tmp_path, restarts, EGRESS_SECRET_KEYS=f"{new},{old}")
    _still_works(rotated, token, connection)
    with api(rotated, token) as http:  # re-entered secrets are sealed under the new first key
        r = http.patch(f"{API}/connections/{connection}", json={"secrets": {"password": "pw-2"}})
        assert r.status_code == 200, r.text
    stop_server(rotated)

    only_new = _start(tmp_path, restarts, EGRESS_SECRET_KEYS=new)
    _still_works(only_new, token, connection)
