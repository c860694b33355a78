"""Settings that are validated when the process starts, so a bad value never reaches a request."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from egress.settings import (
    DATA_DIR_MODE,
    DEFAULT_BATCH_BYTES,
    DEFAULT_DOWNLOAD_URL_TTL_S,
    DEFAULT_MAX_BODY_BYTES,
    MAX_DOWNLOAD_URL_TTL_S,
    Settings,
)


def test_download_url_ttl_defaults_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EGRESS_DOWNLOAD_URL_TTL_S", raising=False)
    assert Settings().download_url_ttl_s == DEFAULT_DOWNLOAD_URL_TTL_S == 900
    monkeypatch.setenv("EGRESS_DOWNLOAD_URL_TTL_S", "60")
    assert Settings().download_url_ttl_s == 60


@pytest.mark.parametrize("ttl", ["0", "-5", str(MAX_DOWNLOAD_URL_TTL_S + 1), "soon"])
def test_download_url_ttl_must_be_a_positive_signable_lifetime(
    monkeypatch: pytest.MonkeyPatch, ttl: str
) -> None:
    monkeypatch.setenv("EGRESS_DOWNLOAD_URL_TTL_S", ttl)
    with pytest.raises(ValidationError, match="download_url_ttl_s"):
        Settings()


def test_max_body_bytes_defaults_to_8_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EGRESS_MAX_BODY_BYTES", raising=False)
    assert Settings().max_body_bytes == DEFAULT_MAX_BODY_BYTES == 8 << 20
    monkeypatch.setenv("EGRESS_MAX_BODY_BYTES", "65536")
    assert Settings().max_body_bytes == 65536


def test_batch_bytes_defaults_to_16_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EGRESS_BATCH_BYTES", raising=False)
    assert Settings().batch_bytes == DEFAULT_BATCH_BYTES == 8 << 20
    monkeypatch.setenv("EGRESS_BATCH_BYTES", str(1 << 20))
    assert Settings().batch_bytes == 1 << 20
    monkeypatch.setenv("EGRESS_BATCH_BYTES", "100")
    with pytest.raises(ValidationError, match="batch_bytes"):
        Settings()


def test_the_data_dir_is_private_even_when_it_already_existed(tmp_path: Path) -> None:
    fresh = Settings(data_dir=tmp_path / "fresh" / "data")
    fresh.ensure_data_dir()
    assert stat.S_IMODE(fresh.resolved_data_dir.stat().st_mode) == DATA_DIR_MODE == 0o700
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    Settings(data_dir=old).ensure_data_dir()
    assert stat.S_IMODE(old.stat().st_mode) == 0o700
