"""Authenticating a token reads the metadata database at most once per revocation window,
and a revocation still takes effect when the window ends; the same for the failed sign-in
limit's bucket, across two replicas sharing one database."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from egress.access_tokens import AccessTokens
from egress.container import Container
from egress.domain.errors import Busy, Unauthenticated
from egress.domain.identity import Principal, Subject
from egress.services import Services
from egress.services.revocation import RevocationCache
from egress.settings import Settings
from tests.support.migrated import migrate


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = Settings(data_dir=tmp_path)
    migrate(settings.resolved_database_url)
    c = Container.build(settings)
    yield c
    c.engine.dispose()
    c.warehouse.engine.dispose()


def _count_queries(engine: sa.Engine) -> list[str]:
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(engine, "before_cursor_execute", note)
    return seen


def test_a_personal_token_is_checked_against_the_database_once_per_window(
    container: Container,
) -> None:
    t = [0.0]
    container.revocation_cache = RevocationCache(5, monotonic=lambda: t[0])
    identity = container.services.identity
    ws = identity.create_workspace("w")
    operator = identity.create_token(ws, "editor", "ops")
    creator = identity.authenticate(operator.token)
    personal = identity.create_personal_token(creator, "poller", "viewer", None)
    queries = _count_queries(container.engine)

    first = identity.authenticate(personal.token)
    reads = len(queries)
    assert reads > 0
    for _ in range(50):  # a client polling: no more database reads
        assert container.services.identity.authenticate(personal.token) == first
    assert len(queries) == reads
    assert first == Principal(
        ws,
        "viewer",
        Subject("token", personal.record.id, "poller"),
        "personal_token",
        Subject("token", operator.record.id, "ops"),
    )

    identity.revoke_token(operator.record.id)  # the creator goes away
    t[0] += 4.9
    assert identity.authenticate(personal.token).role == "viewer"  # within the window
    t[0] += 0.2
    with pytest.raises(Unauthenticated, match="creator no longer has access"):
        identity.authenticate(personal.token)


def test_expiry_is_checked_on_every_request_even_from_the_cache(tmp_path: Path) -> None:
    now = [datetime(2026, 12, 1, tzinfo=UTC)]
    settings = Settings(data_dir=tmp_path)
    migrate(settings.resolved_database_url)
    container = Container.build(settings, clock=lambda: now[0])
    identity = container.services.identity
    ws = identity.create_workspace("w")
    token = identity.create_token(ws, "admin", "short", 1)
    assert identity.authenticate(token.token).role == "admin"
    now[0] += timedelta(days=1, seconds=1)
    with pytest.raises(Unauthenticated, match="has expired"):
        container.services.identity.authenticate(token.token)
    container.engine.dispose()
    container.warehouse.engine.dispose()


def test_an_access_tokens_signature_is_checked_once_per_window_and_its_expiry_always(
    tmp_path: Path,
) -> None:
    now, t = [datetime(2026, 12, 1, tzinfo=UTC)], [0.0]
    settings = Settings(data_dir=tmp_path)
    migrate(settings.resolved_database_url)
    container = Container.build(settings, clock=lambda: now[0])
    verified: list[str] = []

    class Counted(AccessTokens):
        def signed_claims(self, token: str) -> dict[str, Any]:
            verified.append(token)
            return super().signed_claims(token)

    container.access_tokens = Counted(container.signing, container.clock, 60)
    container.revocation_cache = RevocationCache(5, monotonic=lambda: t[0])
    s = container.services
    ws = s.identity.create_workspace("w")
    client = s.users.create_client(ws, "app", "viewer", []).record
    claims = {"sub": client.id, "sub_type": "client", "ws": ws, "role": "viewer"}
    token = container.access_tokens.issue(claims)
    for _ in range(20):
        assert s.identity.authenticate(token).role == "viewer"
    assert verified == [token]
    with pytest.raises(Unauthenticated, match="not valid"):
        s.identity.authenticate(token[:-4] + "AAAA")  # a forged signature is never remembered
    now[0] += timedelta(seconds=61)  # expired within the window: refused all the same
    with pytest.raises(Unauthenticated, match="has expired"):
        s.identity.authenticate(token)
    container.engine.dispose()
    container.warehouse.engine.dispose()


def test_the_sign_in_limit_reads_its_bucket_once_per_window_and_holds_across_replicas(
    tmp_path: Path,
) -> None:
    t = [0.0]
    settings = Settings(data_dir=tmp_path, failed_signins_per_minute=2)
    migrate(settings.resolved_database_url)
    replicas = [Container.build(settings) for _ in range(2)]
    for c in replicas:  # each replica remembers on its own
        c.revocation_cache = RevocationCache(5, monotonic=lambda: t[0])
    a, b = (c.services for c in replicas)
    ws = a.identity.create_workspace("w")
    token = a.identity.create_token(ws, "viewer", "poller").token

    def sign_in(on: Services, address: str, credential: str) -> Principal:
        return on.sign_ins.authenticate(address, lambda: on.identity.authenticate(credential))

    assert sign_in(b, "10.0.0.9", token).role == "viewer"
    queries = _count_queries(replicas[1].engine)
    for _ in range(50):  # a client polling through b: neither its token nor its bucket is read
        sign_in(b, "10.0.0.9", token)
    assert queries == []

    # What the event loop asks first: memory answers, or None (then a thread asks the database).
    def check(on: Services, credential: str) -> Callable[[], Principal]:
        return lambda: on.identity.authenticate(credential)

    assert b.sign_ins.remembered("10.0.0.9", check(b, token)) == sign_in(b, "10.0.0.9", token)
    assert b.sign_ins.remembered("10.0.0.99", check(b, token)) is None  # not checked by b yet
    wrong = check(b, "egr_guess0")
    assert b.sign_ins.remembered("10.0.0.9", wrong) is None  # a failure is recorded in a thread
    assert queries == []

    for guess in ("egr_guess1", "egr_guess2"):  # two failures through a use up the address
        with pytest.raises(Unauthenticated):
            sign_in(a, "10.0.0.9", guess)
    with pytest.raises(Busy, match="too many failed sign-ins"):
        sign_in(a, "10.0.0.9", "egr_guess3")
    with pytest.raises(Busy):  # a counted them: it refuses a valid token at once
        sign_in(a, "10.0.0.9", token)
    assert a.sign_ins.remembered("10.0.0.9", check(a, token)) is None

    t[0] += 4.9  # b did not see them: it answers from memory for the rest of its window...
    assert sign_in(b, "10.0.0.9", token).role == "viewer"
    t[0] += 0.2  # ...then reads the shared bucket and refuses too
    with pytest.raises(Busy, match="too many failed sign-ins"):
        sign_in(b, "10.0.0.9", token)
    assert sign_in(b, "10.0.0.10", token).role == "viewer"  # other addresses are unaffected
    for c in replicas:
        c.engine.dispose()
        c.warehouse.engine.dispose()
