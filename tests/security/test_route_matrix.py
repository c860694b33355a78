"""Every route of the OpenAPI document, times every kind of credential, against one real server.

The routes come from the server's own ``/openapi.json``, so a route added later is in the
matrix without anyone listing it: it must declare its minimum role (``x-egress-role``, from
``api.wiring.Requires``) or be one of the few public ones below, and it needs an example in
``CASES`` when it takes a body or an id this module does not know yet.

For each route: no token, an expired token, a tampered token → 401; a token of another
workspace on a route naming an object → 404; each role below the declared one → 403 — and the
metadata database is byte-for-byte what it was before each refused request. Then each role at
or above the declared one gets the route's success status.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from egress.access_tokens import AccessTokens
from egress.container import Container
from egress.db.engine import make_engine
from egress.db.tables import metadata
from egress.domain.identity import ADMIN, EDITOR, VIEWER, at_least
from egress.settings import Settings
from egress.signing import load_signing_ring
from tests.conftest import wait_for_status
from tests.e2e.helpers import API, CONFIGS, DONE, trigger
from tests.security.conftest import Tenants
from tests.support.http import sqlite_connection, submitted_configuration, template

# Routes anyone may call: liveness and the ways to get a credential in the first place.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/oauth/jwks.json"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("POST", "/oauth/token"),
    ("POST", "/api/v3/token"),
    # A signed file link is its own credential (tests/e2e/test_errors.py: one not issued is 403).
    ("GET", "/api/v1/links/run-file/{token}"),
    ("HEAD", "/api/v1/links/run-file/{token}"),
    # A bulk export's file link: its signature is the credential (403 when changed or expired).
    ("GET", "/export-files/{token}"),
    ("HEAD", "/export-files/{token}"),
}
ROLES = (VIEWER, EDITOR, ADMIN)


@dataclass
class World:
    """Workspace A's objects (the ones every path names) and the credentials to try."""

    tokens: dict[str, str]  # role → A's token
    refused: dict[str, str | None]  # name → credential that must get 401
    other: str  # workspace B's admin token
    ids: dict[str, str]
    spare: dict[str, list[str]] = field(default_factory=dict)  # per id kind, for DELETEs
    shop: Path = Path()
    n: int = 0
    http: httpx.Client = field(default_factory=httpx.Client)  # one connection for all calls

    def unique(self, stem: str) -> str:
        self.n += 1
        return f"{stem}-{self.n}"


@dataclass(frozen=True)
class Case:
    """How to call a route: its body (built per call: names must be unique) and which ids the
    success calls use (DELETE takes a spare object, so the others keep theirs)."""

    body: Callable[[World], Any] | None = None
    spare: tuple[str, str] | None = None  # (path parameter, World.spare pool)
    success: int | None = None  # default: the route's 2xx in the OpenAPI document
    success_as: dict[str, int] = field(default_factory=dict)  # a role's own, before ``success``


def _schedule(http: httpx.Client, config_id: str) -> str:
    """A schedule of the configuration (its limit raised so the matrix's own POSTs fit)."""
    cfg = f"{API}/extraction-configurations/{config_id}"
    http.patch(cfg, json={"schedulesLimit": 20}).raise_for_status()
    r = http.post(f"{cfg}/schedules", json={"cron": "0 3 * * *"})
    r.raise_for_status()
    return str(r.json()["id"])


def _connection_body(w: World) -> dict[str, Any]:
    return {"name": w.unique("conn"), "type": "sqlite", "settings": {"path": str(w.shop)}}


def _configuration_body(w: World) -> dict[str, Any]:
    return {
        "name": w.unique("cfg"),
        "templateId": w.ids["template_id"],
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
    }


def _extraction_body(w: World) -> dict[str, Any]:
    """Seed 002's configuration object over the matrix's table."""
    return {"title": w.unique("noco"), "elementType": "FILE", "elementId": w.ids["elementId"]}


NOCO = "/noCo/api/v2/workspaces/{workspaceId}/extraction"
_OTHERS_REQUEST = {VIEWER: 404, EDITOR: 404}
CFG = f"{CONFIGS}/{{config_id}}"
EXE = f"{CFG}/executions/{{execution_id}}"
CASES: dict[tuple[str, str], Case] = {
    ("POST", f"{API}/connections"): Case(_connection_body),
    ("PATCH", f"{API}/connections/{{connection_id}}"): Case(lambda w: {"name": w.unique("shop")}),
    ("DELETE", f"{API}/connections/{{connection_id}}"): Case(
        spare=("connection_id", "connections")
    ),
    ("POST", f"{API}/templates"): Case(
        lambda w: (
            {"connectionId": w.ids["connection_id"], "name": w.unique("t"), "table": "items"}
            | {"schema": "main"}
        )
    ),
    ("POST", CONFIGS): Case(_configuration_body),
    ("PUT", CFG): Case(_configuration_body, spare=("config_id", "drafts")),
    ("PATCH", CFG): Case(lambda w: {"name": w.unique("cfg")}, spare=("config_id", "drafts")),
    ("DELETE", CFG): Case(spare=("config_id", "drafts")),
    ("POST", f"{CFG}/submit"): Case(spare=("config_id", "drafts")),
    ("POST", f"{CFG}/executions"): Case(lambda w: {}),
    ("POST", f"{CFG}/schedules"): Case(lambda w: {"cron": "0 2 * * *"}),
    ("PATCH", f"{CFG}/schedules/{{schedule_id}}"): Case(lambda w: {"enabled": True}),
    ("DELETE", f"{CFG}/schedules/{{schedule_id}}"): Case(spare=("schedule_id", "schedules")),
    # Authorised, the cancel of a finished run is refused by the run's state, not the caller.
    ("POST", f"{EXE}/cancel"): Case(success=409),
    ("POST", f"{EXE}/rerun"): Case(spare=("execution_id", "finished")),
    ("POST", f"{API}/tokens"): Case(lambda w: {"name": w.unique("pat")}),
    ("DELETE", f"{API}/tokens/{{token_id}}"): Case(spare=("token_id", "tokens")),
    ("POST", f"{API}/users"): Case(
        lambda w: {"email": f"{w.unique('u')}@x.test", "role": "viewer"}
    ),
    ("PATCH", f"{API}/users/{{user_id}}"): Case(lambda w: {"role": "editor"}),
    ("DELETE", f"{API}/users/{{user_id}}"): Case(spare=("user_id", "users")),
    ("POST", f"{API}/clients"): Case(lambda w: {"name": w.unique("c"), "role": "viewer"}),
    ("DELETE", f"{API}/clients/{{client_id}}"): Case(spare=("client_id", "clients")),
    ("POST", f"{API}/idm/{{firmId}}/{{objects}}/export"): Case(lambda w: {}),
    # Authorised, the cancel of a finished export is refused by its state, not the caller.
    # A request is its user's (the admin's here): another user's answers as unknown.
    ("DELETE", f"{API}/request/{{requestId}}"): Case(success=409, success_as={EDITOR: 404}),
    ("GET", f"{API}/request/{{requestId}}"): Case(success_as=_OTHERS_REQUEST),
    ("GET", "/noCo/api/v1/requestLog/status/{requestId}"): Case(success_as=_OTHERS_REQUEST),
    ("POST", f"{NOCO}/{{extractionId}}/{{elementType}}/{{elementId}}/run"): Case(
        lambda w: {"selectAll": True}
    ),
    ("POST", NOCO): Case(_extraction_body),
    ("PUT", f"{NOCO}/{{extractionId}}"): Case(_extraction_body, spare=("extractionId", "drafts")),
    ("DELETE", f"{NOCO}/{{extractionId}}"): Case(spare=("extractionId", "drafts")),
}


# What a refused request is meant to write: its audit entry (a failed sign-in or a refusal)
# and the failed sign-in limit's bucket. tests/e2e/test_audit_http.py checks those entries.
_RECORDS_OF_REFUSALS = {"audit_events", "rate_buckets"}


def _snapshot(db: sa.Engine) -> str:
    """Every row of every metadata table but the records of refusals, as one digest."""
    digest = hashlib.sha256()
    with db.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in _RECORDS_OF_REFUSALS:
                continue
            for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns)):
                digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


def _token(data_dir: Path, workspace_id: str, role: str, *, expired: bool = False) -> str:
    """A token made by the identity service on the server's database and keys (in-process:
    quicker than another ``egress admin`` process); ``expired``: one that expired yesterday,
    made with the clock set back."""
    made_at = datetime.now(UTC) - timedelta(days=2 if expired else 0)
    c = Container.build(Settings(data_dir=data_dir), clock=lambda: made_at)
    try:
        return c.services.identity.create_token(workspace_id, role, f"m-{role}", 1).token
    finally:
        c.engine.dispose()
        c.warehouse.engine.dispose()


def _tampered(token: str) -> str:
    """One character changed in the middle (the last one of a JWT may be padding bits)."""
    n = len(token) // 2
    return token[:n] + ("A" if token[n] != "A" else "B") + token[n + 1 :]


def _expired_jwt(data_dir: Path, workspace_id: str) -> str:
    """An admin access token signed with the server's own key, an hour past its expiry."""
    then = datetime.now(UTC) - timedelta(hours=2)
    ring = load_signing_ring(Settings(data_dir=data_dir))
    claims = {"sub": "m", "sub_type": "client", "ws": workspace_id, "role": ADMIN}
    return AccessTokens(ring, lambda: then, 3600).issue(claims)


def _client_jwt(http: httpx.Client) -> str:
    """An admin access token of a client, by the client credentials grant."""
    client = http.post(f"{API}/clients", json={"name": "matrix-jwt", "role": ADMIN}).json()
    r = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client["clientId"], client["clientSecret"]),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def _shop(folder: Path) -> Path:
    path = folder / "matrix.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (sku TEXT PRIMARY KEY, price INTEGER)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(f"s{i}", i) for i in range(3)])
    conn.close()
    return path


def _finished_execution(http: httpx.Client, config_id: str) -> str:
    execution = str(trigger(http, config_id)["id"])
    body = wait_for_status(http, config_id, execution, DONE)
    assert body["latestStatus"] == "COMPLETED", body
    return execution


def _finished_export(http: httpx.Client, firm: str, template_id: str) -> str:
    """A completed export request of the admin (who may then start another)."""
    r = http.post(f"{API}/idm/{firm}/t-{template_id}/export")
    assert r.status_code == 200, r.text
    request_id = str(r.json()["requestId"])
    for _ in range(600):
        status = http.get(f"{API}/request/{request_id}").json()["status"]
        if status in ("Completed", "Failed"):
            break
        time.sleep(0.05)
    assert status == "Completed", status
    return request_id


def _file_element(http: httpx.Client, connection_id: str, name: str) -> str:
    """The catalog id of the table ``name`` (seed 002's FILE element)."""
    tree = http.get(f"{API}/connections/{connection_id}/elements").json()["data"]
    return str(next(f["id"] for d in tree for f in d["children"] if f["name"] == name))


def _made(http: httpx.Client, collection: str, body: dict[str, Any]) -> str:
    r = http.post(f"{API}/{collection}", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _draft(http: httpx.Client, w: World) -> str:
    r = http.post(CONFIGS, json=_configuration_body(w))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
def world(tenants: Tenants) -> World:
    server = tenants.server
    viewer = _token(server.data_dir, tenants.a.id, VIEWER)
    a = tenants.a
    w = World(
        tokens={VIEWER: viewer, EDITOR: a.editor, ADMIN: a.admin},
        refused={
            "no token": None,
            "expired": _token(server.data_dir, a.id, ADMIN, expired=True),
            "tampered": _tampered(a.admin),
        },
        other=tenants.b.admin,
        ids={},
        shop=_shop(tenants.sources),
        http=httpx.Client(base_url=server.base_url, timeout=30),
    )
    with tenants.client(a.admin) as http:
        jwt = _client_jwt(http)
        w.refused["expired access token"] = _expired_jwt(server.data_dir, a.id)
        w.refused["tampered access token"] = _tampered(jwt)
        connection = sqlite_connection(http, w.shop, "matrix")
        tpl = str(template(http, connection, "main.items")["id"])
        w.ids.update(connection_id=connection, template_id=tpl)
        config = submitted_configuration(http, tpl, "matrix-csv")
        loads = submitted_configuration(
            http,
            tpl,
            "matrix-table",
            destination={"type": "dataTable", "dataTable": "items", "mode": "upsert"},
        )
        execution = _finished_execution(http, config)
        _finished_execution(http, loads)
        tables = http.get(f"{API}/data-tables").json()["data"]
        w.ids.update(
            config_id=config,
            execution_id=execution,
            sub_extract_id="all",
            table_id=str(tables[0]["id"]),
        )
        w.ids["schedule_id"] = _schedule(http, config)
        w.spare["schedules"] = [_schedule(http, config) for _ in ROLES]
        w.spare["connections"] = [sqlite_connection(http, w.shop, f"spare-{r}") for r in ROLES]
        w.spare["drafts"] = [_draft(http, w) for _ in range(12)]
        w.spare["finished"] = [_finished_execution(http, config) for _ in ROLES]
        w.ids.update(firmId=a.id, objects=f"t-{tpl}", requestId=_finished_export(http, a.id, tpl))
        w.ids.update(
            workspaceId=a.id,
            extractionId=config,
            elementType="FILE",
            elementId=_file_element(http, connection, "items"),
        )
        w.ids["user_id"] = _made(http, "users", {"email": "matrix@x.test", "role": "viewer"})
        w.ids["client_id"] = _made(http, "clients", {"name": "matrix", "role": "viewer"})
        w.ids["token_id"] = _made(http, "tokens", {"name": "matrix"})
        w.spare["users"] = [_made(http, "users", {"email": "spare@x.test", "role": "viewer"})]
        w.spare["clients"] = [_made(http, "clients", {"name": "spare", "role": "viewer"})]
        w.spare["tokens:admin"] = [_made(http, "tokens", {"name": "spare"})]
    with tenants.client(a.editor) as http:
        w.spare["tokens:editor"] = [_made(http, "tokens", {"name": "spare"})]
    return w


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    role: str | None
    success: int
    has_body: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _routes(doc: dict[str, Any]) -> Iterator[Route]:
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            codes = sorted(int(c) for c in op["responses"] if c.startswith("2"))
            yield Route(
                method.upper(), path, op.get("x-egress-role"), codes[0], "requestBody" in op
            )


def _url(route: Route, ids: dict[str, str]) -> str:
    return route.path.format(**ids)


def _call(route: Route, token: str | None, w: World, ids: dict[str, str]) -> httpx.Response:
    case = CASES.get((route.method, route.path), Case())
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = case.body(w) if case.body else None
    return w.http.request(route.method, _url(route, ids), json=body, headers=headers)


def test_every_route_declares_a_role_or_is_public(tenants: Tenants) -> None:
    doc = httpx.get(f"{tenants.server.base_url}/openapi.json").json()
    undeclared = {(r.method, r.path) for r in _routes(doc) if r.role is None}
    assert undeclared == PUBLIC
    for r in _routes(doc):
        # A body this module cannot make up would turn every case into a 422 (the public routes,
        # the OAuth forms among them, are not in the matrix).
        if r.has_body and r.role is not None:
            assert (r.method, r.path) in CASES and CASES[r.method, r.path].body, str(r)


def test_route_matrix(tenants: Tenants, world: World) -> None:
    server = tenants.server
    doc = httpx.get(f"{server.base_url}/openapi.json").json()
    routes = [r for r in _routes(doc) if r.role is not None]
    db = make_engine(f"sqlite:///{server.data_dir}/egress.db")
    failures: list[str] = []

    def expect(route: Route, who: str, token: str | None, status: int) -> None:
        before = _snapshot(db)
        r = _call(route, token, world, world.ids)
        if r.status_code != status:
            failures.append(f"{route} as {who}: {r.status_code}, expected {status}: {r.text}")
        elif r.headers.get("content-type") != "application/problem+json":
            failures.append(f"{route} as {who}: not problem JSON: {r.headers}")
        if _snapshot(db) != before:
            failures.append(f"{route} as {who}: a refused request changed the database")

    # Refused first, while nothing else moves (the setup's runs are over).
    for route in routes:
        assert route.role is not None
        for who, token in world.refused.items():
            expect(route, who, token, 401)
        if "{" in route.path:
            expect(route, "another workspace's admin", world.other, 404)
        for role in ROLES:
            if not at_least(role, route.role):
                expect(route, role, world.tokens[role], 403)

    # Then each role allowed; DELETEs last, so the objects the others name still exist.
    for route in sorted(routes, key=lambda r: r.method == "DELETE"):
        assert route.role is not None
        case = CASES.get((route.method, route.path), Case())
        for role in ROLES:
            if not at_least(role, route.role):
                continue
            ids = dict(world.ids)
            if case.spare:  # a pool of the role's own objects, else the shared one
                param, pool = case.spare
                ids[param] = world.spare.get(f"{pool}:{role}", world.spare.get(pool, [])).pop()
            r = _call(route, world.tokens[role], world, ids)
            expected = case.success_as.get(role) or case.success or route.success
            if r.status_code != expected:
                failures.append(f"{route} as {role}: {r.status_code} not {expected}: {r.text}")
    db.dispose()
    assert not failures, "\n".join(failures)
