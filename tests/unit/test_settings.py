"""Settings that are validated when the process starts, so a bad value never reaches a request."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from egress.settings import DEFAULT_DOWNLOAD_URL_TTL_S, MAX_DOWNLOAD_URL_TTL_S, Settings


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
