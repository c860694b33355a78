"""Egress's JSONL from PostgreSQL at ``COPY`` speed: the CSV fast path's ``COPY`` (the server
renders each value's text, ``columns.py``), its blocks of whole rows parsed by Arrow's CSV
reader and joined into the JSONL writer's lines (``json_lines``) as they arrive.

The JSON text of each value is its CSV text: integers and booleans bare, timestamps with
ISO 8601's ``T`` for the text's one space, text escaped where JSON needs it, the rest (dates,
decimals, UUIDs) quoted as it is. So the bytes are exactly the JSONL writer's
(``sinks/jsonl.py``; ``tests/integration/test_jsonl_copy.py`` compares them), and the server
spends on JSONL what it spends on CSV: building each line in SQL cost it ~2.2x that
(bench/README.md, issue 19)."""

from __future__ import annotations

from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from egress.json_lines import (
    Render,
    Rendered,
    bare,
    content,
    json_lines,
    keys,
    strings,
    write_lines,
)
from egress.sources.postgresql.columns import can_render_csv


def can_render_jsonl(logical: str, shortest_floats: bool = False) -> bool:
    """Types whose CSV text is their JSON text (or a cheap step from it): the CSV fast path's,
    less JSON columns (embedded as values, re-encoded by the writer). Floats too where the C
    loop re-lays them out (``PostgresSource``; a single read as the double it widens to)."""
    return logical != "json" and can_render_csv(logical, shortest_floats)


# PostgreSQL's words for a float that is not a number, the C loop leaves as they are: JSON
# has no such numbers, and Egress's JSONL writes them as strings.
_FLOAT_WORDS = pa.array(["NaN", "Infinity", "-Infinity"])


def _floats(text: pa.Array) -> Rendered:
    """Doubles already in Python's layout (the C loop's ``PYTHON_LAYOUT``), the words quoted."""
    words = pc.is_in(text, value_set=_FLOAT_WORDS)
    if not pc.any(words).as_py():
        return bare(text)
    return bare(pc.if_else(words, pc.binary_join_element_wise('"', text, '"', ""), text))


def _from_text(field: pa.Field) -> Render:
    """How the CSV text of ``field``'s values becomes their JSON text."""
    t = field.type
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_list(t):
        return bare  # 'true'/'false', digits, an array's JSON
    if pa.types.is_floating(t):  # a single too: the C loop had the double it widens to
        return _floats
    if pa.types.is_timestamp(t):
        # 'YYYY-MM-DD HH:MI:SS.ffffff[Z]', an ISO year outside 1-9999, or an infinity's word.
        return lambda text: content(pc.replace_substring(text, " ", "T", max_replacements=1))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return strings
    return content  # dates, decimals: digits, hyphens, words


class JsonlFromCsv:
    """Takes the CSV ``COPY``'s blocks (whole rows, no header, the CSV fast path's quoting)
    and writes their JSON lines to ``out``; ``last``: the last line written. Converted on the
    ``COPY``'s own thread: one on a thread of its own gained nothing on 2 cores, which the
    server's ``COPY`` processes already keep busy (bench/README.md, issue 19)."""

    def __init__(self, out: BinaryIO, schema: pa.Schema) -> None:
        self._out = out
        self._keys = keys(schema.names)
        self._renders = [_from_text(f) for f in schema]
        names = [f"c{i}" for i in range(len(schema))]  # Arrow's own: a field's name is free text
        self._read = pcsv.ReadOptions(column_names=names, use_threads=False)
        # Text of any kind, newlines in it too, is always quoted; an empty unquoted value
        # (an integer's or a boolean's) is a null, a quoted empty one an empty string.
        self._parse = pcsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
        self._convert = pcsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            check_utf8=False,  # the server's UTF-8 (a SQL_ASCII database never comes here)
        )
        self.last = b""

    def write(self, block: bytes | bytearray | memoryview) -> int:
        if not block:
            return 0
        if not self._renders:  # no columns: each row is an empty line
            self._out.write(b"{}\n" * bytes(block).count(b"\n"))
            self.last = b"{}\n"
            return len(block)
        read = self._read
        if len(block) >= read.block_size:
            # A block holds whole rows, one of them maybe longer than the reader's block
            # (1 MiB), which it refuses ("straddles two block boundaries"): the block is
            # in memory already, so parse it as one.
            read = pcsv.ReadOptions(
                column_names=read.column_names, use_threads=False, block_size=len(block) + 1
            )
        table = pcsv.read_csv(
            pa.BufferReader(pa.py_buffer(block)),
            read_options=read,
            parse_options=self._parse,
            convert_options=self._convert,
        )
        for batch in table.to_batches():
            values = [render(col) for render, col in zip(self._renders, batch.columns, strict=True)]
            lines = json_lines(self._keys, values, batch.num_rows)
            write_lines(self._out, lines)
        self.last = lines[-1].as_py().encode()
        return len(block)
