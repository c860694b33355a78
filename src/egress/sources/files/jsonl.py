"""JSONL read block by block, naming the keys the template does not have instead of dropping
them without a word.

A JSONL template's columns are inferred from a file's first block (1 MiB). ``pyarrow.dataset``
then reads with the template's schema and drops every other key silently, and Arrow's
streaming reader, asked to fail instead, does not say which key. So each block (whole lines,
cut like Arrow's own) is parsed on its own with unknown keys *inferred*: a column beyond the
template's is a key the template lacks, named at no extra cost. Only a block with such a key is
scanned line by line (stdlib json, that block only) for the line it first appears on; when
Arrow cannot infer the key (its values change type within the block), the block is parsed
again ignoring unknown keys and that scan names them. Nested values keep the template's type:
keys inside them that it lacks are not read, and the run names the column. Memory stays two
blocks and their tables.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa
import pyarrow.json as pjson

from egress.sources.base import SourceError, clean
from egress.sources.files.formats import float_keeps

# Arrow's own block size: the first block is the one a template's columns were inferred from.
BLOCK_BYTES = 1 << 20
_ROW = re.compile(r" in row (\d+)")  # Arrow counts the non-blank lines of a block from 0
# Arrow parses a JSON number into a float64 column as the nearest float64, without a word. Only
# a number of 16 digits or more, or with a three-digit exponent, can be changed so: a float64
# gives back every decimal of up to 15 significant digits in its normal range. Such a number
# after ':', ',' or '[' (digits inside a string seldom follow one) has its line checked.
_LONG_NUMBER = re.compile(rb"[:,\[]\s*-?(?:\d\.?){16}|[:,\[]\s*-?\d[\d.]*[eE][+-]?\d{3}")


class _Number(str):
    """A JSON number's text, as written."""


class Readable(Protocol):
    def read(self, nbytes: int, /) -> bytes: ...


def read_jsonl(
    stream: Readable,
    path: str,
    schema: pa.Schema,
    known: Collection[str],
    notice: Callable[[str], None],
    check: Callable[[], None],
) -> Iterator[pa.Table]:
    """The rows of one JSONL file as tables of ``schema`` (one per block). ``known`` are keys
    not to report (the file's first-block columns: a folder's other files are compared with
    the template before the read); every other key is reported once through ``notice``."""
    seen = _Seen(path, {*known, *schema.names}, notice)
    floats = any(_has_float(f.type) for f in schema)
    # The next block is parsed (Arrow lets go of the GIL) while the caller writes this one,
    # as the dataset scan's read-ahead did; one block in flight keeps memory bounded.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-jsonl") as pool:
        ahead: deque[tuple[int, bytes, Future[_Parsed]]] = deque()
        for first_line, block in _blocks(stream, check):
            ahead.append(
                (first_line, block, pool.submit(_parse, block, schema, path, first_line, floats))
            )
            if len(ahead) > 1:
                yield seen.table(*ahead.popleft())
        while ahead:
            yield seen.table(*ahead.popleft())


@dataclass(frozen=True)
class _Parsed:
    table: pa.Table  # in the template's schema
    keys: list[str]  # top-level keys beyond the template
    nested: list[str]  # columns whose nested values have keys beyond the template's type


@dataclass
class _Seen:
    """What a file's read has reported, so each key and column is named once."""

    path: str
    keys: set[str]
    notice: Callable[[str], None]
    nested: set[str] = field(default_factory=set)

    def table(self, first_line: int, block: bytes, parsed: Future[_Parsed]) -> pa.Table:
        result = parsed.result()
        if any(key not in self.keys for key in result.keys):
            for key, line in _first_lines(block, first_line, self.keys).items():
                self.keys.add(key)
                self.notice(
                    f"{self.path}: key {key!r} (first on line {line}) is not in the template, "
                    "whose columns come from the first 1 MiB; it was not read"
                )
        for name in result.nested:
            if name not in self.nested:
                self.nested.add(name)
                self.notice(
                    f"{self.path}: column {name!r} has nested keys that are not in the "
                    "template's type, which comes from the first 1 MiB; they were not read"
                )
        return result.table


def _blocks(stream: Readable, check: Callable[[], None]) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, bytes) of whole lines, about BLOCK_BYTES each: a line longer
    than that makes one longer block (Arrow's reader would fail on it)."""
    line, carry = 1, bytearray()
    while True:
        check()
        chunk = stream.read(BLOCK_BYTES)
        carry += chunk
        cut = carry.rfind(b"\n") + 1 if chunk else len(carry)
        if cut:
            block = bytes(carry[:cut])
            del carry[:cut]
            yield line, block
            line += block.count(b"\n")
        if not chunk:
            return


def _parse(block: bytes, schema: pa.Schema, path: str, first_line: int, floats: bool) -> _Parsed:
    if floats:
        _refuse_rounded(block, schema, path, first_line)
    try:
        table = _read(block, schema, "infer")
    except pa.ArrowException:
        pass  # an unknown key of changing type, or a bad line: ignoring unknown keys tells which
    else:
        keys = table.column_names[len(schema) :]  # inferred columns come after the explicit
        table = table.select(range(len(schema)))
        nested = [f.name for f in schema if table.schema.field(f.name).type != f.type]
        return _Parsed(table.cast(schema) if nested else table, keys, nested)
    try:
        table = _read(block, schema, "ignore")
    except pa.ArrowException as exc:
        raise SourceError(_located(exc, path, block, first_line)) from exc
    return _Parsed(table, list(_first_lines(block, first_line, schema.names)), [])


def _has_float(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return any(_has_float(f.type) for f in t)
    if pa.types.is_list(t):
        return _has_float(t.value_type)
    return bool(pa.types.is_floating(t))


def _refuse_rounded(block: bytes, schema: pa.Schema, path: str, first_line: int) -> None:
    """Fail, naming the line, the column and the number, on a number a float column (or a
    float inside a nested one) would change: ``123.456789012345678901``, ``9007199254740993``.
    ``1.10`` passes: its float64 is written 1.1, the same number."""
    if _LONG_NUMBER.search(block) is None:
        return  # nearly always: one scan of the block in C
    for offset, text in enumerate(block.split(b"\n")):
        if _LONG_NUMBER.search(text) is None:
            continue
        try:
            row = json.loads(text, parse_float=_Number, parse_int=_Number)
        except ValueError:
            continue  # not a row: Arrow's read names the line
        if not isinstance(row, dict):
            continue
        for f in schema:
            number = _rounded(row.get(f.name), f.type)
            if number is not None:
                raise SourceError(
                    f"{path} line {first_line + offset}: column {f.name!r} holds {number},"
                    f" which float64 cannot hold without changing it ({float(number)!r});"
                    " a JSONL column is a decimal only when the file's first 1 MiB needs one"
                )


def _rounded(value: object, t: pa.DataType) -> _Number | None:
    """The first number in ``value`` that its float place in ``t`` would change, or None."""
    if isinstance(value, _Number):
        return None if not pa.types.is_floating(t) or float_keeps(value) else value
    if isinstance(value, dict) and pa.types.is_struct(t):
        found = (_rounded(value.get(f.name), f.type) for f in t)
    elif isinstance(value, list) and pa.types.is_list(t):
        found = (_rounded(item, t.value_type) for item in value)
    else:
        return None
    return next((n for n in found if n is not None), None)


def first_numbers(stream: Readable, names: Collection[str]) -> dict[str, list[str]]:
    """The texts of the numbers under the top-level keys ``names`` in the whole lines of a
    file's first block, the one its template's columns are inferred from."""
    block = stream.read(BLOCK_BYTES)
    numbers: dict[str, list[str]] = {name: [] for name in names}
    for text in block[: block.rfind(b"\n") + 1 or len(block)].split(b"\n"):
        try:
            row = json.loads(text, parse_float=_Number, parse_int=_Number)
        except ValueError:
            continue
        if isinstance(row, dict):
            for name, found in numbers.items():
                if isinstance(value := row.get(name), _Number):
                    found.append(value)
    return numbers


def _read(block: bytes, schema: pa.Schema, unexpected: str) -> pa.Table:
    return pjson.read_json(
        pa.BufferReader(block),
        read_options=pjson.ReadOptions(use_threads=False, block_size=len(block) + 1),
        parse_options=pjson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior=unexpected
        ),
    )


def _first_lines(block: bytes, first_line: int, known: Collection[str]) -> dict[str, int]:
    """Each top-level key of the block's objects that is not in ``known``, with the first line
    it is on."""
    found: dict[str, int] = {}
    for offset, text in enumerate(block.split(b"\n")):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError:
            continue  # Arrow parsed the block, so this is not a row (a stray byte order mark…)
        if isinstance(value, dict):
            for key in value:
                if key not in known and key not in found:
                    found[key] = first_line + offset
    return found


def _located(exc: BaseException, path: str, block: bytes, first_line: int) -> str:
    """Arrow's message with the line in the file, not the row within the block (``row 8338``
    for line 100,002); without a row, the block's lines."""
    text = clean(exc)
    row = _ROW.search(text)
    if row is None:
        last = first_line + max(block.count(b"\n") - 1, 0)
        return f"{path} lines {first_line}-{last}: {text}"
    seen = -1
    for offset, part in enumerate(block.split(b"\n")):
        seen += bool(part.strip())
        if seen == int(row.group(1)):
            return f"{path} line {first_line + offset}: {text.replace(row.group(0), '')}"
    return f"{path}: {text}"
