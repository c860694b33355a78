"""A configuration's incremental state as the run queue reads and moves it: the watermark, the
last snapshot and the observations, each change under the configuration row's lock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from egress.db.tables import extraction_configurations as T
from egress.domain.incremental import Observation
from egress.domain.spec import FrozenWindow


@dataclass(frozen=True)
class IncrementalState:
    """What a configuration's next incremental run builds on."""

    watermark: Any
    snapshot: str | None  # the last completed snapshot window's own snapshot
    quiet: bool  # nothing was in progress in ``snapshot``: no late commit to look for
    observations: list[Observation]


def read_state(conn: Connection, configuration_id: str) -> IncrementalState:
    row = conn.execute(
        sa.select(T.c.watermark, T.c.incremental_state).where(T.c.id == configuration_id)
    ).one()
    state = row.incremental_state or {}
    return IncrementalState(
        watermark=row.watermark,
        snapshot=state.get("snapshot"),
        quiet=bool(state.get("quiet")),
        observations=[Observation.from_json(o) for o in state.get("observations", [])],
    )


def _locked(conn: Connection, configuration_id: str) -> tuple[Any, dict[str, Any]]:
    """The configuration's watermark and incremental state, locked until commit."""
    row = conn.execute(
        sa.select(T.c.watermark, T.c.incremental_state)
        .where(T.c.id == configuration_id)
        .with_for_update()
    ).one()
    return row.watermark, dict(row.incremental_state or {})


def set_state(conn: Connection, configuration_id: str, **changes: Any) -> None:
    _, state = _locked(conn, configuration_id)
    conn.execute(
        T.update().where(T.c.id == configuration_id).values(incremental_state={**state, **changes})
    )


def advance_watermark(conn: Connection, configuration_id: str, window: FrozenWindow) -> None:
    """The watermark moves to the window's high, only from the mark the window was built on:
    the window was frozen with a high no earlier than its low in the source's own order
    (``engine/windows.py``), which Python cannot tell for a collated text cursor; a re-run of
    an older execution moves nothing, nor a run that read only part of its window (its
    trigger's own dateFrom/dateTo, whereClause or rows: ``keeps_watermark``)."""
    if window.keeps_watermark:
        return
    current, _ = _locked(conn, configuration_id)
    if current == window.low and window.high != current:
        conn.execute(T.update().where(T.c.id == configuration_id).values(watermark=window.high))


def advance_snapshot(conn: Connection, configuration_id: str, window: FrozenWindow) -> None:
    """Move the watermark and snapshot to the window's, only from the pair it was built on:
    rows at or below the watermark visible in the snapshot are all delivered. A run that read
    only part of its window (``keeps_watermark``) moves neither: its late commits too are
    taken by the next run that reads the whole window."""
    assert window.snapshot is not None
    if window.keeps_watermark:
        return
    watermark, state = _locked(conn, configuration_id)
    if watermark != window.low or state.get("snapshot") != window.snapshot.previous_snapshot:
        return
    conn.execute(
        T.update()
        .where(T.c.id == configuration_id)
        .values(
            watermark=window.high,  # frozen no earlier than its low (engine/windows.py)
            incremental_state={
                **state,
                "snapshot": window.snapshot.snapshot,
                "quiet": window.snapshot.quiet,
            },
        )
    )
