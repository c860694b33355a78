"""Schemathesis over every OpenAPI document of a real `egress serve` for longer than `make test`
allows (tests/e2e/test_openapi_conformance.py gives it 40 s): the same seeded objects, the same
configuration (tests/support/schemathesis.toml), all checks, a time budget per document.

    .venv/bin/python bench/schemathesis_run.py [--minutes 10] [--seed N]

Prints each document's failures (Schemathesis's own report) and exits 1 if there were any.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from egress.demo import create_orders_db

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import start_server, stop_server
from tests.support import schemathesis_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="for the native document")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "server").mkdir()
        server = start_server(root / "server")
        try:
            db = create_orders_db(root / "shop.db", rows=500)
            with server.client() as http:
                ids = schemathesis_run.seed(http, db)
            started = time.monotonic()
            failures = schemathesis_run.run(
                server.base_url,
                ids,
                server.token,
                root,
                max_time=int(args.minutes * 60),
                seed=args.seed,
            )
            elapsed = time.monotonic() - started
        finally:
            stop_server(server)
    for failure in failures:
        print(f"== {failure['document']}\n{failure['output']}")
    print(f"seed {args.seed}: {len(failures)} document(s) with failures in {elapsed:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
