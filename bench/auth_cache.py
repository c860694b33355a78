"""What authenticating a request costs with and without the revocation cache.

In-process (the identity service as `api/wiring.py` calls it, no HTTP): a personal token and
an OAuth access token authenticated N times, with EGRESS_REVOCATION_CACHE_S 5 and 0, on the
SQLite and PostgreSQL metadata backends. Prints microseconds per call and database statements
per call.

    .venv/bin/python bench/auth_cache.py [--calls 2000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from egress.container import Container
from egress.db.migrate import upgrade
from egress.settings import Settings

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _backend(name: str, data_dir: Path) -> tuple[str | None, str | None]:
    if name == "sqlite":
        return None, None
    db = f"bench_auth_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {db}")
    admin.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", db


def _drop(db: str) -> None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {db} WITH (FORCE)")
    admin.dispose()


def measure(backend: str, cache_s: float, calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url, db = _backend(backend, Path(tmp))
        settings = Settings(data_dir=Path(tmp), database_url=url, revocation_cache_s=cache_s)
        upgrade(settings.resolved_database_url)
        c = Container.build(settings)
        try:
            identity = c.services.identity
            ws = identity.create_workspace("bench")
            operator = identity.create_token(ws, "admin", "ops")
            personal = identity.create_personal_token(
                identity.authenticate(operator.token), "poller", "viewer", None
            )
            client = c.services.users.create_client(ws, "etl", "editor", [])
            jwt = c.access_tokens.issue(
                {"sub": client.record.id, "sub_type": "client", "ws": ws, "role": "editor"}
            )
            statements = [0]

            def count(*_: Any) -> None:
                statements[0] += 1

            sa.event.listen(c.engine, "before_cursor_execute", count)
            out: dict[str, Any] = {"backend": backend, "cache_s": cache_s}
            for label, token in (("personal token", personal.token), ("access token", jwt)):
                statements[0] = 0
                start = time.perf_counter()
                for _ in range(calls):
                    c.services.identity.authenticate(token)
                took = time.perf_counter() - start
                out[label] = (took / calls * 1e6, statements[0] / calls)
            return out
        finally:
            c.engine.dispose()
            c.warehouse.engine.dispose()
            if db:
                _drop(db)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    columns = ["backend", "cache (s)", "personal token µs/call", "statements/call"]
    columns += ["access token µs/call", "statements/call"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|")
    for backend in args.backends.split(","):
        for cache_s in (5.0, 0.0):
            r = measure(backend, cache_s, args.calls)
            p, a = r["personal token"], r["access token"]
            print(
                f"| {backend} | {cache_s:g} | {p[0]:.0f} | {p[1]:.2f} | {a[0]:.0f} | {a[1]:.2f} |"
            )


if __name__ == "__main__":
    main()
