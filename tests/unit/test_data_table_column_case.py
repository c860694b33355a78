"""Which columns a data table cannot hold apart: on SQLite, names equal but for ASCII case."""

from __future__ import annotations

import sqlite3

import pytest

from egress.domain.data_tables import case_clash


def test_names_differing_only_in_case_clash_on_sqlite() -> None:
    problem = case_clash(["id", "v", "ID"], "sqlite")
    assert problem is not None
    assert problem.startswith("columns 'id' and 'ID' differ only in letter case, which a data")
    assert "leave one out with fields" in problem
    assert case_clash(["id", "v", "Iv", "iD"], "sqlite") == case_clash(["id", "iD"], "sqlite")


@pytest.mark.parametrize(
    "names",
    [
        ["id", "v"],
        ["id", "id"],  # one column: the table's own, loaded again
        ["é", "É"],  # SQLite folds ASCII letters only
        ["ß", "SS"],
    ],
)
def test_names_sqlite_keeps_apart_do_not_clash(names: list[str]) -> None:
    assert case_clash(names, "sqlite") is None
    if len(set(names)) == len(names):  # as SQLite itself decides
        quoted = ", ".join(f'"{n}" INTEGER' for n in names)
        sqlite3.connect(":memory:").execute(f"CREATE TABLE t ({quoted})")


def test_postgresql_keeps_them_apart() -> None:
    assert case_clash(["id", "ID", "Id"], "postgresql") is None
