"""JSON columns as Egress's JSONL embeds them (``render.json_document``'s rules), a column at a
time: in C (``json_compact.c``, built with the package) for every document that is already
Python's compact text but for its whitespace — PostgreSQL's ``jsonb`` and MySQL's JSON text
are — and by ``json_document`` for the rest (another escape, a repeated key, text that is not
JSON: its error), and for every document where the C part was not built. Value by value in
Python, a ``jsonb`` column cost ~4-5 µs a row, most of a JSONL run's time (bench/README.md)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from egress.sinks.render import json_document
from egress.sources.native import address, built_library

LIBRARY_NAME = "_json_compact"


def _load() -> Callable[..., Any] | None:
    path = built_library(__file__, LIBRARY_NAME)
    if path is None:
        return None
    compact = ctypes.CDLL(str(path)).egress_json_compact
    compact.argtypes = [ctypes.c_void_p] * 2 + [ctypes.c_long, ctypes.c_void_p, ctypes.c_long]
    compact.argtypes += [ctypes.c_void_p] * 3
    compact.restype = None
    return compact


_COMPACT = _load()


def json_documents(col: pa.Array, column: str) -> pa.Array:
    """Each JSON document of ``col`` (text) as JSONL embeds it; NULL stays NULL."""
    if _COMPACT is None or not pa.types.is_string(col.type) or len(col) == 0:
        return _by_value(col, column)
    validity, offsets, data = col.buffers()
    n = len(col)
    out = bytearray(max(1, 0 if data is None else data.size))
    out_offsets = bytearray(4 * (n + 1))
    left = bytearray(n)
    _COMPACT(
        offsets.address + 4 * col.offset,
        0 if data is None else data.address,
        n,
        None if validity is None else validity.address,
        col.offset,
        address(out),
        address(out_offsets),
        address(left),
    )
    texts = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(out_offsets), pa.py_buffer(out)]
    )
    if col.null_count:
        texts = pc.if_else(pc.is_valid(col), texts, pa.scalar(None, pa.string()))
    if 1 in left:
        mask = pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(left)]).cast(pa.bool_())
        rest = _by_value(pc.filter(col, mask), column)
        texts = pc.replace_with_mask(texts, mask, rest)
    return texts


def _by_value(col: pa.Array, column: str) -> pa.Array:
    values = [None if v is None else json_document(v, column) for v in col.to_pylist()]
    return pa.array(values, pa.string())
