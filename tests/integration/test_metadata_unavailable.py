"""A metadata PostgreSQL that cannot be reached: the engine gives up after its connect timeout
(not the OS's ~2 minutes of TCP retries), and the error is classed as "unavailable" — what the
API answers 503 for and the background loops log in one line."""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

from egress.db import engine as metadata_engine


def test_an_unanswering_server_times_out_and_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A listener that never accepts: the TCP handshake completes in the kernel's backlog, and
    # the server's first message never comes, as with a hung host behind a load balancer.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        monkeypatch.setattr(metadata_engine, "CONNECT_TIMEOUT_S", 2)
        engine = metadata_engine.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
        with pytest.raises(sa.exc.OperationalError) as caught:
            engine.connect()
        engine.dispose()
    assert "timeout" in str(caught.value.orig).lower()
    assert metadata_engine.unavailable(caught.value) == "the database is unreachable; try again"


def test_a_refused_connection_is_unavailable_and_a_bad_statement_is_not() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    engine = metadata_engine.make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/x")
    with pytest.raises(sa.exc.OperationalError) as refused:
        engine.connect()
    assert metadata_engine.unavailable(refused.value) == "the database is unreachable; try again"

    live = metadata_engine.make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    with live.connect() as conn, pytest.raises(sa.exc.DBAPIError) as wrong:
        conn.execute(sa.text("SELECT no_such_column FROM pg_class"))
    live.dispose()
    assert metadata_engine.unavailable(wrong.value) is None
