"""MySQL/MariaDB: the server's clock and the oldest transaction still open, read right after an
incremental run's ``max(cursor)`` on the same connection, so the mark never passes a row that a
long transaction may still commit (README "Incremental extraction under concurrent writers");
and the privileges a session's user holds (RELOAD lines a parallel read's snapshots up)."""

from __future__ import annotations

from typing import Any

import pymysql

from egress.domain.incremental import ServerClock
from egress.sources.mysql.catalog import ACCESS_SQL

PROCESS_WARNING = (
    "the connection's user lacks the PROCESS privilege, so incremental runs cannot see open"
    " transactions: they rely on incrementalLag alone, and a row whose transaction stays open"
    " longer than the lag can be missed (GRANT PROCESS ON *.* to the user to close that gap)"
)

# Why a parallel read runs in one session (issue 19): lining the sessions' snapshots up holds
# writes off for a moment with FLUSH TABLES WITH READ LOCK.
NO_RELOAD = (
    "the connection's user lacks the RELOAD privilege, which lines the sessions' snapshots "
    "up (GRANT RELOAD ON *.* to the user to read in parallel)"
)

# innodb_trx renders trx_started in the server process's own time zone (whole seconds), not
# the session's: CONVERT_TZ from SYSTEM and UNIX_TIMESTAMP give epoch seconds on the server's
# clock, as UNIX_TIMESTAMP(NOW(6)) does. Transactions that cannot write (an autocommit SELECT,
# START TRANSACTION READ ONLY) and this connection's own are left out.
_OPEN_SQL = """
SELECT UNIX_TIMESTAMP(NOW(6)),
       UNIX_TIMESTAMP(CONVERT_TZ(MIN(trx_started), 'SYSTEM', @@session.time_zone))
FROM information_schema.innodb_trx
WHERE trx_mysql_thread_id <> CONNECTION_ID()
  AND trx_is_read_only = 0 AND trx_autocommit_non_locking = 0
"""
# Without PROCESS the server refuses innodb_trx (1227); a server without InnoDB lacks it (1109).
_NOT_VISIBLE = (1227, 1109)


def server_clock(cur: Any) -> ServerClock | None:
    """The server's clock now and the oldest open transaction's start; None when the user may
    not see other sessions' transactions (the run then relies on the lag alone)."""
    try:
        cur.execute(_OPEN_SQL)
        row = cur.fetchone()
    except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as exc:
        if exc.args and exc.args[0] in _NOT_VISIBLE:
            return None
        raise
    now, oldest = row
    return ServerClock(float(now), None if oldest is None else float(oldest))


def privileges(cur: Any) -> set[str]:
    """The privileges granted to the session's user (globally, on a schema or a table)."""
    cur.execute("SELECT CURRENT_USER()")
    row = cur.fetchone()
    user, _, host = str(row[0] if row else "").rpartition("@")
    cur.execute(ACCESS_SQL, {"g": f"'{user}'@'{host}'"})
    return {str(p).upper() for (p,) in cur.fetchall()}
