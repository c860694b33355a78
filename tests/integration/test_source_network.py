"""PostgreSQL and MySQL sources under the trust policy, below the API: the policy is checked
again when a source is opened (a stored connection to an address denied since, or to Egress's
own database), runs get no read timeout while interactive calls do, and the classes of
connection errors."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network
from pathlib import Path

import psycopg
import pymysql
import pytest

from egress.sources.base import HOST_NOT_ALLOWED, TIMED_OUT, ConnectFailed
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.mysql import connect_error_class as mysql_class
from egress.sources.policy import HostUnresolved, OwnDatabase, server_addresses
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.postgresql import connect_error_class as pg_class
from tests.conftest import MysqlDatabase, PgDatabase
from tests.support.listeners import listening
from tests.support.policy import policy_for


def _pg(db: str, port: int = 5432) -> PostgresSettings:
    return PostgresSettings(host="127.0.0.1", port=port, database=db, user="postgres")


def test_a_denied_address_is_refused_when_the_source_opens(tmp_path: Path) -> None:
    """Saved while allowed, denied since (or a DNS answer that changed): nothing connects."""
    policy = replace(policy_for(tmp_path), deny_hosts=(ip_network("127.0.0.0/8"),))
    with listening("silent") as silent:
        mysql = MysqlSettings(host="localhost", port=silent.port, database="d", user="u")
        for source in (
            PostgresSource(_pg("d", silent.port), {}, policy),
            MysqlSource(mysql, {}, policy),
        ):
            with pytest.raises(ConnectFailed) as failed:
                source.check()
            assert str(failed.value) == HOST_NOT_ALLOWED
        assert silent.accepted == 0


def test_egress_own_database_is_refused_when_the_source_opens(
    tmp_path: Path, pg_db: PgDatabase
) -> None:
    policy = replace(policy_for(tmp_path), own_databases=(("localhost", 5432, pg_db.name),))
    with pytest.raises(OwnDatabase):
        server_addresses("127.0.0.1", 5432, pg_db.name, policy)
    with pytest.raises(ConnectFailed, match=HOST_NOT_ALLOWED):
        PostgresSource(_pg(pg_db.name), {}, policy).check()
    PostgresSource(_pg("postgres"), {}, policy).check()  # another database on that server
    with pytest.raises(HostUnresolved):
        server_addresses("no-such-host.invalid", 5432, "d", policy)


def test_interactive_calls_get_a_read_timeout_and_runs_do_not(
    tmp_path: Path, pg_db: PgDatabase, mysql_db: MysqlDatabase
) -> None:
    policy = replace(policy_for(tmp_path), connect_timeout_s=7.0)
    by_name = _pg(pg_db.name).model_copy(update={"host": "localhost"})
    run = PostgresSource(by_name, {}, policy)
    interactive = PostgresSource(_pg(pg_db.name), {}, policy.interactive())
    with run._psycopg() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)
        params = conn.info.get_parameters()
        assert (params["connect_timeout"], params["tcp_user_timeout"]) == ("7", "7000")
        # libpq connected to the checked address and kept the name (TLS verifies the name).
        assert conn.info.host == "localhost" and conn.info.hostaddr in ("127.0.0.1", "::1")
    with interactive._psycopg() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("7s",)

    settings = MysqlSettings.model_validate(mysql_db.settings)
    with MysqlSource(settings, mysql_db.secrets, policy)._connect() as conn:
        assert conn._read_timeout is None
    with MysqlSource(settings, mysql_db.secrets, policy.interactive())._connect() as conn:
        assert conn._read_timeout == pytest.approx(9.0)
        with conn.cursor() as cur:
            cur.execute("SELECT @@max_statement_time")
            assert float(cur.fetchone()[0]) == pytest.approx(7.0)


def test_a_silent_server_times_out_within_the_connections_own_limit(tmp_path: Path) -> None:
    """min(the connection's connect_timeout, EGRESS_SOURCE_TIMEOUT_S): here the connection's."""
    policy = policy_for(tmp_path).interactive()
    with listening("silent") as silent:
        pg = PostgresSettings(
            host="127.0.0.1", port=silent.port, database="d", user="u", connect_timeout=2
        )
        my = MysqlSettings(host="127.0.0.1", port=silent.port, database="d", user="u")
        my = my.model_copy(update={"connect_timeout": 1})
        for source in (PostgresSource(pg, {}, policy), MysqlSource(my, {}, policy)):
            with pytest.raises(ConnectFailed, match=TIMED_OUT):
                source.check()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            psycopg.OperationalError(
                'connection failed: connection to server at "ssl.role.example", port 5432 '
                "failed: Connection refused"
            ),
            "could not connect",
        ),
        (
            psycopg.OperationalError(
                'connection to server at "h", port 1 failed: FATAL:  password authentication '
                'failed for user "u"'
            ),
            "authentication failed",
        ),
        (
            psycopg.OperationalError(
                'connection to server at "h", port 1 failed: fe_sendauth: no password supplied'
            ),
            "authentication failed",
        ),
        (
            psycopg.OperationalError(
                'connection to server at "h", port 1 failed: server does not support SSL, but '
                "SSL was required"
            ),
            "TLS failed",
        ),
    ],
)
def test_postgresql_error_classes(error: Exception, expected: str) -> None:
    assert pg_class(error) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            pymysql.err.OperationalError(2003, "Can't connect (Connection refused)"),
            "could not connect",
        ),
        (pymysql.err.OperationalError(2013, "Lost connection (timed out)"), "timed out"),
        (pymysql.err.OperationalError(1045, "Access denied for user"), "authentication failed"),
        (pymysql.err.OperationalError(1049, "Unknown database 'x'"), "database not found"),
        (
            pymysql.err.InternalError("Packet sequence number wrong - got 80 expected 0"),
            "not a MySQL server",
        ),
        (IndexError("index out of range"), "not a MySQL server"),
        (pymysql.err.OperationalError(1156, "Got packets out of order"), "not a MySQL server"),
    ],
)
def test_mysql_error_classes(error: Exception, expected: str) -> None:
    assert mysql_class(error) == expected
