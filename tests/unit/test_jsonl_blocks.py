"""JSONL read block by block: every row arrives once, in order, whatever the stream's reads
return and however long a line is; keys beyond the template are named once with their line."""

from __future__ import annotations

import io
import json

import pyarrow as pa

from egress.sources.files.jsonl import BLOCK_BYTES, read_jsonl

SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string())])


class _Trickle(io.BytesIO):
    """A stream that returns at most 1,000 bytes per read, as a network stream may."""

    def read(self, nbytes: int | None = -1, /) -> bytes:
        return super().read(min(1_000, nbytes if nbytes and nbytes > 0 else 1_000))


def _read(data: bytes, stream: type[io.BytesIO] = io.BytesIO) -> tuple[list[dict], list[str]]:
    noticed: list[str] = []
    tables = read_jsonl(stream(data), "f.jsonl", SCHEMA, ["id"], noticed.append, lambda: None)
    return [row for t in tables for row in t.to_pylist()], noticed


def test_a_line_longer_than_a_block_and_short_reads_lose_nothing() -> None:
    rows = [{"id": i, "text": "x" * (3 * BLOCK_BYTES if i == 5 else 10)} for i in range(10)]
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    assert _read(data) == (rows, [])
    assert _read(data[:-1]) == (rows, [])  # no newline at the end
    small = data[:20_000]  # short reads: a block is whatever whole lines have arrived
    small = small[: small.rfind(b"\n") + 1]
    assert _read(small, _Trickle)[0] == [json.loads(line) for line in small.splitlines()]


def test_each_unknown_key_is_named_once_with_its_first_line() -> None:
    data = b'{"id": 1}\n\n{"id": 2, "late": 1}\n{"id": 3, "late": 2, "also": "x"}\n'
    rows, noticed = _read(data)
    assert rows == [{"id": i, "text": None} for i in (1, 2, 3)]
    assert noticed == [
        f"f.jsonl: key {key!r} (first on line {line}) is not in the template, whose columns "
        "come from the first 1 MiB; it was not read"
        for key, line in (("late", 3), ("also", 4))
    ]
