"""The trust policy tests open sources under: files roots at pytest's base temporary folder,
where every test keeps its source files (confinement itself is tested in tests/security)."""

from __future__ import annotations

from pathlib import Path

from egress.settings import Settings
from egress.sources.policy import SourcePolicy


def files_root(tmp_path: Path) -> Path:
    """pytest's base temporary folder: the parent of every ``tmp_path`` and ``mktemp`` folder."""
    return tmp_path.parent


def policy_for(tmp_path: Path) -> SourcePolicy:
    settings = Settings(data_dir=tmp_path / "data", files_roots=str(files_root(tmp_path)))
    return SourcePolicy.from_settings(settings)
