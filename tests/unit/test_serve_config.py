"""`egress serve` runs uvicorn on its C event loop and HTTP parser (uvloop, httptools), named
explicitly: a missing one fails at start instead of quietly serving on the slower ones; with
its embedded worker it hands the GIL around more often."""

from __future__ import annotations

import sys
from pathlib import Path

import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from egress.cli.main import EMBEDDED_SWITCH_INTERVAL_S, _server
from egress.container import Container
from tests.conftest import make_settings


def test_serve_runs_on_uvloop_and_httptools(tmp_path: Path) -> None:
    container = Container.build(make_settings(tmp_path))
    try:
        config = _server(container, with_worker=False).config
        config.load()
        loop = config.get_loop_factory()()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
        assert config.http_protocol_class is HttpToolsProtocol
    finally:
        container.engine.dispose()


def test_an_embedded_worker_shortens_the_gil_switch_interval(tmp_path: Path) -> None:
    """So that the event loop gets the GIL back soon while an extraction thread computes."""
    container = Container.build(make_settings(tmp_path))
    before = sys.getswitchinterval()
    try:
        _server(container, with_worker=False)
        assert sys.getswitchinterval() == before
        _server(container, with_worker=True)
        assert sys.getswitchinterval() == EMBEDDED_SWITCH_INTERVAL_S
    finally:
        sys.setswitchinterval(before)
        container.engine.dispose()


def test_the_access_log_is_off_unless_asked_for(tmp_path: Path) -> None:
    """A line per request costs a status poll about 5% of its CPU (README "Settings")."""
    for extra, logged in (({}, False), ({"access_log": True}, True)):
        container = Container.build(make_settings(tmp_path, **extra))
        try:
            assert _server(container, with_worker=False).config.access_log is logged
        finally:
            container.engine.dispose()
