"""A newcomer's shell for running the README's examples as written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from egress.demo import create_orders_db


def newcomer_env(home: Path, bin_dir: Path, **extra: str) -> dict[str, str]:
    """`egress` and `python` in ``bin_dir`` (first on PATH), a fresh config dir under ``home``,
    the demo database where `make demo` puts it, and no EGRESS_ setting of this process."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, command in (("egress", "-m egress.cli.main"), ("python", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {command} "$@"\n')
        shim.chmod(0o755)
    create_orders_db(home / "egress-data" / "sources" / "demo" / "shop.db")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGRESS_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        PYTHONPATH=os.pathsep.join(sys.path),
        XDG_CONFIG_HOME=str(home / "config"),
        **extra,
    )
    return env
