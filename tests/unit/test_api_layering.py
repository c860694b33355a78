"""Services are the only way in: nothing under ``api/`` reaches the metadata database, the
sinks, the sources or the object store except the dependency wiring (``api/wiring.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import egress.api

FORBIDDEN = ("egress.db", "egress.sinks", "egress.sources", "obstore")
WIRING = "wiring.py"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


def _reaches(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FORBIDDEN)


def test_only_the_wiring_imports_the_data_plane() -> None:
    root = Path(egress.api.__file__).parent
    offenders = {
        str(path.relative_to(root)): sorted(m for m in _imports(path) if _reaches(m))
        for path in root.rglob("*.py")
        if path.relative_to(root) != Path(WIRING)
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert any(_reaches(m) for m in _imports(root / WIRING))  # the scan sees real imports


def test_the_scan_catches_an_import(tmp_path: Path) -> None:
    bad = tmp_path / "route.py"
    bad.write_text("from egress.db.executions import ExecutionRecord\nimport obstore.store\n")
    assert sorted(m for m in _imports(bad) if _reaches(m)) == [
        "egress.db.executions",
        "obstore.store",
    ]
