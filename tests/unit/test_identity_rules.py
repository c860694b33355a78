"""Roles and token lifetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from egress.domain.errors import Forbidden, Invalid
from egress.domain.identity import (
    ADMIN,
    EDITOR,
    MAX_TOKEN_DAYS,
    ROLES,
    VIEWER,
    at_least,
    check_name,
    check_role,
    lower_role,
    require_admin,
    require_role,
    token_expiry,
    token_state,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_only_the_admin_role_passes_the_admin_rule() -> None:
    require_admin("admin", "changing connections")
    with pytest.raises(Forbidden, match="changing connections needs the admin role"):
        require_admin("editor", "changing connections")
    with pytest.raises(Forbidden):
        require_admin("member", "x")  # a role from before roles were checked


def test_roles_are_admin_editor_and_viewer() -> None:
    assert check_role("viewer") == "viewer"
    with pytest.raises(Invalid, match="roles are: admin, editor, viewer"):
        check_role("owner")


def test_each_role_may_what_the_roles_below_it_may() -> None:
    assert [r for r in ROLES if at_least(r, EDITOR)] == [ADMIN, EDITOR]
    assert at_least(VIEWER, VIEWER) and not at_least("member", VIEWER)
    assert lower_role(ADMIN, VIEWER) == lower_role(VIEWER, EDITOR) == VIEWER
    with pytest.raises(Forbidden, match=r"triggering needs the editor role; .* role is 'viewer'"):
        require_role(VIEWER, EDITOR, "triggering")


def test_expiry_is_whole_days_from_now_or_never() -> None:
    assert token_expiry(NOW, None) is None
    assert token_expiry(NOW, 30) == NOW + timedelta(days=30)
    for days in (0, -1, MAX_TOKEN_DAYS + 1):
        with pytest.raises(Invalid, match="expiresIn"):
            token_expiry(NOW, days)


def test_token_state() -> None:
    assert token_state(NOW, None, None) == "valid"
    assert token_state(NOW, NOW + timedelta(seconds=1), None) == "valid"
    assert token_state(NOW, NOW, None) == "expired"
    assert token_state(NOW, NOW + timedelta(days=1), NOW) == "revoked"


@pytest.mark.parametrize("name", ["", "   ", "a\x00b", "tab\there", "x" * 201])
def test_names_are_printable_and_bounded(name: str) -> None:
    with pytest.raises(Invalid):
        check_name(name, ("name",))
