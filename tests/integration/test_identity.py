"""The identity service on both metadata backends: token hashes, legacy rows, rotation, expiry,
and the two key rings' settings."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from egress.container import Container
from egress.crypto import load_secret_box
from egress.db.tables import api_tokens
from egress.domain.clock import new_id, utcnow
from egress.domain.errors import Conflict, Unauthenticated
from egress.services import identity
from egress.signing import load_signing_ring, new_signing_key_entry
from tests.conftest import make_settings

K1, K2 = new_signing_key_entry(), new_signing_key_entry()
Build = Callable[..., Container]


@pytest.fixture
def build(tmp_path: Path, metadata_url: str) -> Iterator[Build]:
    """Containers on one metadata database and data dir, with the settings given."""
    made: list[Container] = []

    def make(**settings: object) -> Container:
        c = Container.build(make_settings(tmp_path, metadata_url, **settings))
        made.append(c)
        return c

    yield make
    for c in made:
        c.engine.dispose()


def _row(c: Container, token_id: str) -> sa.Row[object]:
    with c.engine.connect() as conn:
        return conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).one()


def _legacy_token(c: Container, workspace_id: str, token: str) -> str:
    """A row as releases before migration 0007 stored it: plain sha256, no key id."""
    token_id = new_id()
    with c.engine.begin() as conn:
        conn.execute(
            api_tokens.insert().values(
                id=token_id,
                workspace_id=workspace_id,
                name="old",
                role="admin",
                token_hash=hashlib.sha256(token.encode()).hexdigest(),
                created_at=utcnow(),
            )
        )
    return token_id


def test_a_token_authenticates_until_it_expires_or_is_revoked(build: Build) -> None:
    c = build()
    ws = c.services.identity.create_workspace("a")
    with pytest.raises(Conflict):
        c.services.identity.create_workspace("a")
    new = c.services.identity.create_token(ws, "editor", "t", expires_in_days=1)
    principal = c.services.identity.authenticate(new.token)
    assert (principal.workspace_id, principal.role, principal.subject.id) == (
        ws,
        "editor",
        new.record.id,
    )
    with pytest.raises(Unauthenticated, match="not valid"):
        c.services.identity.authenticate(new.token + "x")
    c.clock = lambda: utcnow() + timedelta(days=1)
    with pytest.raises(Unauthenticated, match="has expired"):
        c.services.identity.authenticate(new.token)
    c.clock = utcnow
    c.services.identity.revoke_token(new.record.id)
    first = _row(c, new.record.id).revoked_at
    assert (
        c.services.identity.revoke_token(new.record.id).revoked_at == first
    )  # revoking again: no-op
    with pytest.raises(Unauthenticated, match="has been revoked"):
        c.services.identity.authenticate(new.token)


def test_a_legacy_sha256_token_works_once_and_is_then_stored_as_an_hmac(build: Build) -> None:
    c = build(signing_keys=K1)
    ws = c.workspaces.ensure_workspace("a")
    token_id = _legacy_token(c, ws, "low-entropy")
    assert c.services.identity.authenticate("low-entropy").subject.id == token_id
    row = _row(c, token_id)
    assert row.key_id == K1.split(":")[0]
    assert row.token_hash == identity.token_hash(c.signing, row.key_id, "low-entropy")
    assert c.services.identity.authenticate("low-entropy").subject.id == token_id


def test_the_bootstrap_token_survives_the_upgrade_and_rotation(build: Build) -> None:
    first = build(signing_keys=K1)
    first.settings.bootstrap_token = "dev-token"
    ws = first.workspaces.ensure_workspace("default")
    token_id = _legacy_token(first, ws, "dev-token")  # made by an older release
    first.services.identity.ensure_bootstrap_token(first.settings.bootstrap_token)
    assert _row(first, token_id).key_id == K1.split(":")[0]  # re-hashed at start, not on use
    assert len(first.services.identity.list_tokens()) == 1

    rotated = build(signing_keys=f"{K2},{K1}")
    rotated.settings.bootstrap_token = "dev-token"
    rotated.services.identity.ensure_bootstrap_token(rotated.settings.bootstrap_token)
    assert _row(rotated, token_id).key_id == K2.split(":")[0]
    assert rotated.services.identity.authenticate("dev-token").role == "admin"

    rotated.services.identity.revoke_token(token_id)
    rotated.services.identity.ensure_bootstrap_token(
        rotated.settings.bootstrap_token
    )  # a restart does not undo a revocation
    with pytest.raises(Unauthenticated):
        rotated.services.identity.authenticate("dev-token")


def test_a_hash_counts_only_under_the_key_it_names(build: Build) -> None:
    """A row claiming key k2 but holding the sha256 of a token is not that token."""
    c = build(signing_keys=f"{K2},{K1}")
    token_id = _legacy_token(c, c.workspaces.ensure_workspace("a"), "guess")
    with c.engine.begin() as conn:
        conn.execute(
            api_tokens.update().where(api_tokens.c.id == token_id).values(key_id=K2.split(":")[0])
        )
    with pytest.raises(Unauthenticated):
        c.services.identity.authenticate("guess")


def test_key_files_are_generated_once_with_mode_0600(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    settings.ensure_data_dir()
    rings = []

    def load() -> None:
        rings.append(load_signing_ring(settings).current)

    threads = [threading.Thread(target=load) for _ in range(8)]  # processes starting together
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(rings)) == 1
    box = load_secret_box(settings)
    assert box.open(load_secret_box(settings).seal({"p": "x"})) == {"p": "x"}
    for name in ("signing.key", "secret.key"):
        assert stat.S_IMODE(os.stat(settings.resolved_data_dir / name).st_mode) == 0o600
    assert sorted(p.name for p in settings.resolved_data_dir.iterdir()) == [
        "secret.key",
        "signing.key",
    ]


def test_the_secret_key_ring(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    legacy = make_settings(tmp_path)
    legacy.secret_key = old  # EGRESS_SECRET_KEY, from before the ring
    sealed = load_secret_box(legacy).seal({"p": "x"})
    ring = load_secret_box(make_settings(tmp_path, secret_keys=f"{new}, {old}"))
    assert ring.open(sealed) == {"p": "x"}
    assert load_secret_box(make_settings(tmp_path, secret_keys=new)).open(
        ring.seal({"p": "y"})
    ) == {"p": "y"}
    with pytest.raises(RuntimeError, match="none of the keys"):
        load_secret_box(make_settings(tmp_path, secret_keys=new)).open(sealed)
    with pytest.raises(ValueError, match="EGRESS_SECRET_KEYS entry 2 is not a Fernet key"):
        load_secret_box(make_settings(tmp_path, secret_keys=f"{new},short"))
