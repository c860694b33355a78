"""JSON columns of the metadata database are strict JSON: a NaN fails where it is written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sqlalchemy as sa

from egress.db.engine import make_engine


def test_a_json_column_refuses_nan_when_written(tmp_path: Path) -> None:
    """SQLite's JSON functions refuse Python's bare NaN: stored, it made every later query
    that reads the column with them fail (the run queue's claim, for every workspace)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    table = sa.Table("t", sa.MetaData(), sa.Column("v", sa.JSON))
    table.metadata.create_all(engine)
    with (
        pytest.raises(sa.exc.StatementError, match="Out of range float values"),
        engine.begin() as conn,
    ):
        conn.execute(table.insert().values(v={"rows": [{"id": math.nan}]}))
    with engine.begin() as conn:
        conn.execute(table.insert().values(v={"rows": [{"id": 1.5}]}))
        assert conn.execute(sa.text("SELECT json_extract(v, '$.rows[0].id') FROM t")).all() == [
            (1.5,)
        ]
    engine.dispose()
