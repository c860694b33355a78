"""What ``DetailsCache`` serves from memory, against a version and a clock the test moves."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from egress.db.changes import MetadataVersion
from egress.db.execution_cache import MAX_AGE_S, DetailsCache
from egress.db.execution_records import ExecutionRecord
from egress.domain.spec import ExecutionSpec


class Version(MetadataVersion):
    def __init__(self) -> None:
        self.value: int | None = 1

    def current(self) -> object | None:
        return self.value


class Database:
    """Execution details by key, counting reads; ``during_read`` runs inside a read."""

    def __init__(self, record: ExecutionRecord) -> None:
        self.record = record
        self.reads = 0
        self.during_read = lambda: None

    def read(self, workspace_id: str, configuration_id: str, execution_id: str) -> ExecutionRecord:
        self.reads += 1
        seen = replace(self.record, workspace_id=workspace_id, configuration_id=configuration_id)
        self.during_read()
        return seen


def _record() -> ExecutionRecord:
    return ExecutionRecord(
        id="e",
        workspace_id="w",
        configuration_id="c",
        spec=ExecutionSpec.from_json({"template": {"sourceName": "orders", "fields": []}}),
        trigger="manual",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        runs=[],
    )


def _cache() -> tuple[DetailsCache, Version, Database, list[float]]:
    now = [0.0]
    cache = DetailsCache(monotonic=lambda: now[0])
    version = Version()
    cache.attach(version)
    return cache, version, Database(_record()), now


def test_served_from_memory_until_the_version_moves() -> None:
    cache, version, db, _ = _cache()
    first = cache.get(db.read, "w", "c", "e")
    assert cache.get(db.read, "w", "c", "e") is first
    assert cache.cached("w", "c", "e") is first
    assert db.reads == 1
    version.value = 2
    assert cache.cached("w", "c", "e") is None
    cache.get(db.read, "w", "c", "e")
    assert db.reads == 2


def test_a_write_during_the_read_is_not_hidden() -> None:
    cache, version, db, _ = _cache()

    def commit_elsewhere() -> None:
        version.value = 2  # after the read's snapshot, perhaps: the entry must not outlive it

    db.during_read = commit_elsewhere
    cache.get(db.read, "w", "c", "e")
    assert cache.cached("w", "c", "e") is None
    db.during_read = lambda: None
    cache.get(db.read, "w", "c", "e")
    assert db.reads == 2
    assert cache.cached("w", "c", "e") is not None


def test_nothing_older_than_the_age_bound() -> None:
    cache, _, db, now = _cache()
    cache.get(db.read, "w", "c", "e")
    now[0] = MAX_AGE_S
    assert cache.cached("w", "c", "e") is not None
    now[0] = MAX_AGE_S + 0.001
    assert cache.cached("w", "c", "e") is None


def test_keyed_by_workspace_and_configuration() -> None:
    cache, _, db, _ = _cache()
    cache.get(db.read, "w", "c", "e")
    assert cache.cached("x", "c", "e") is None
    assert cache.cached("w", "d", "e") is None
    assert cache.get(db.read, "x", "c", "e").workspace_id == "x"
    assert db.reads == 2


def test_off_without_a_version_or_while_it_is_unknown() -> None:
    cache = DetailsCache()
    db = Database(_record())
    cache.get(db.read, "w", "c", "e")
    cache.get(db.read, "w", "c", "e")
    assert db.reads == 2
    cache, version, db, _ = _cache()
    version.value = None
    cache.get(db.read, "w", "c", "e")
    cache.get(db.read, "w", "c", "e")
    assert db.reads == 2
    version.value = 3
    cache.get(db.read, "w", "c", "e")
    cache.detach()  # the API stopped: nothing more from memory
    assert cache.cached("w", "c", "e") is None
