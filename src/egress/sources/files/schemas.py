"""Schemas by file version, kept across requests."""

from __future__ import annotations

import threading
from collections import OrderedDict

import pyarrow as pa

CacheKey = tuple[str, str, int, int, tuple[str, ...]]


class _SchemaCache:
    """Schemas (or why a file is unreadable) by file version, across requests: browsing a
    bucket reads each file's footer or first block once, not on every catalog call."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[CacheKey, pa.Schema | str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: CacheKey) -> pa.Schema | str | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: CacheKey, value: pa.Schema | str) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)


SCHEMAS = _SchemaCache(capacity=20_000)
