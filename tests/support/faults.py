"""Fault injection: a source and a store (where the run's files go) that fail on cue, so the
retry tests can drive each path: transient then success, transient until the last attempt,
terminal at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

import egress.engine.runner
from egress.domain.plan import ReadPlan
from egress.sources import Source, SourceError
from egress.storage import Storage


class Faults:
    """What the next calls raise, one entry per call in order (None lets a call through);
    calls after the last entry go through."""

    def __init__(self, *plan: BaseException | None) -> None:
        self._plan = list(plan)
        self.calls = 0

    def next(self) -> None:
        self.calls += 1
        if self._plan and (fault := self._plan.pop(0)) is not None:
            raise fault


class FaultySource:
    """A real source whose ``read`` raises the next fault before reading."""

    def __init__(self, inner: Source, faults: Faults) -> None:
        self._inner = inner
        self._faults = faults

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        self._faults.next()
        return self._inner.read(plan, batch_rows, batch_bytes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FaultyStorage:
    """A real store whose ``publish`` (moving a run's file to its final key) raises the next
    fault first: the sink side failing after every row was read."""

    def __init__(self, inner: Storage, faults: Faults) -> None:
        self._inner = inner
        self._faults = faults

    def publish(self, src: str, dst: str) -> None:
        self._faults.next()
        self._inner.publish(src, dst)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def from_driver(message: str, cause: BaseException) -> SourceError:
    """What a source raises for a driver's error: its message, the driver's error as cause."""
    error = SourceError(message)
    error.__cause__ = cause
    return error


def inject_source_faults(monkeypatch: pytest.MonkeyPatch, faults: Faults) -> None:
    """Every source a run opens from now on is a FaultySource sharing ``faults``."""
    real = egress.engine.runner.open_source

    def opening(*args: Any) -> Source:
        return FaultySource(real(*args), faults)  # type: ignore[return-value]

    monkeypatch.setattr(egress.engine.runner, "open_source", opening)
