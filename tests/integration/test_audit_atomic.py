"""Audit entries of metadata changes share the change's transaction, on both backends: an
entry that cannot be written undoes the change, and a refused change leaves no entry. Secret
changes name the secrets, never their values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Connection

from egress.container import Container
from egress.db.audit import AuditRepo
from egress.db.users import ClientRepo, UserRepo
from egress.domain.audit import AuditFilter, AuditObject
from egress.domain.errors import Conflict
from egress.domain.identity import Principal, Subject
from egress.domain.paging import PageRequest
from egress.services.audit import AuditService
from tests.integration.test_repositories import Repos
from tests.support.factories import BARE_SPEC

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def repos(metadata_url: str) -> Repos:
    return Repos(metadata_url)


def test_an_entry_commits_or_rolls_back_with_its_change(repos: Repos) -> None:
    ws = repos.workspaces.ensure_workspace("a")
    audit = AuditService(AuditRepo(repos.engine), lambda: T0)
    admin = Principal(ws, "admin", Subject("token", "t1", "ci"), source_address="10.0.0.7")

    def broken(conn: Connection, object_id: str, more: dict[str, Any]) -> None:
        raise RuntimeError("the audit table is unwritable")

    with pytest.raises(RuntimeError):
        repos.connections.create(ws, "lost", "sqlite", {"path": "/x.db"}, None, broken)
    assert repos.connections.list_page(ws, PageRequest()).items == []
    users, clients = UserRepo(repos.engine), ClientRepo(repos.engine)
    with pytest.raises(RuntimeError):
        users.add_member(ws, "lost@example.test", "viewer", None, broken)
    with pytest.raises(RuntimeError):
        clients.add(ws, "lost", "viewer", None, ["https://app.test/cb"], broken)
    with pytest.raises(RuntimeError):
        repos.workspaces.add_token(ws, "lost", "viewer", "k1", "h1", T0, None, None, broken)
    assert users.members(ws, PageRequest()).total == clients.list_page(ws, PageRequest()).total == 0
    assert repos.workspaces.tokens(ws) == []

    cfg = repos.configuration(ws, "x")
    hook = audit.hook("execution.cancel", "execution", by=admin, workspace_id=ws)
    ex, _ = repos.executions.create(ws, cfg, BARE_SPEC, "api", T0)
    repos.executions.cancel(ws, cfg, ex.id, T0, hook)
    with pytest.raises(Conflict):  # already cancelled: refused, and nothing recorded
        repos.executions.cancel(ws, cfg, ex.id, T0, hook)
    entries = audit.list_page(admin, AuditFilter(), PageRequest()).items
    assert [(e.action, e.object, e.actor, e.source_address, e.detail) for e in entries] == [
        (
            "execution.cancel",
            AuditObject("execution", ex.id),
            Subject("token", "t1", "ci"),
            "10.0.0.7",
            {"run": 1},
        )
    ]


def test_secret_changes_are_on_record_by_name_never_by_value(container: Container) -> None:
    c = container
    ws = c.workspaces.ensure_workspace("a")
    admin = Principal(ws, "admin", Subject("token", "t1", "ci"), source_address="10.0.0.7")
    settings = {"host": "db.internal", "port": 5432, "database": "shop", "user": "etl"}
    made = c.services.connections.create(
        ws, "pg", "postgresql", settings, {"password": "first-secret"}, admin
    )
    c.services.connections.update(ws, made.id, None, None, {"password": "second-secret"}, admin)
    c.services.connections.update(ws, made.id, "shop", None, None, admin)
    entries = c.services.audit.list_page(admin, AuditFilter(), PageRequest()).items
    assert [(e.action, e.object, e.detail) for e in reversed(entries)] == [
        ("connection.create", AuditObject("connection", made.id), {"secrets": ["password"]}),
        (
            "connection.update",
            AuditObject("connection", made.id),
            {"changed": ["secrets"], "secrets": ["password"]},
        ),
        ("connection.update", AuditObject("connection", made.id), {"changed": ["name"]}),
    ]
    recorded = str([e.detail for e in entries])
    assert "first-secret" not in recorded and "second-secret" not in recorded
