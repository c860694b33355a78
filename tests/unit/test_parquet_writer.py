"""The Parquet writer dictionary-encodes the columns whose first rows repeat their values and
writes the others plain; either way a reader gets back exactly the rows written."""

from __future__ import annotations

import io
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from egress.sinks.writers import ParquetWriter

ROWS = 4096
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("region", pa.string()),
        ("ref", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("tags", pa.list_(pa.string())),
        ("flag", pa.bool_()),
    ]
)


def batch(start: int) -> pa.RecordBatch:
    ids = range(start, start + ROWS)
    return pa.RecordBatch.from_pydict(
        {
            "id": list(ids),
            "region": [("EU", "NA", "APAC", None)[i % 4] for i in ids],
            "ref": [f"ref-{i}" for i in ids],
            "amount": [Decimal(i % 3) / 4 for i in ids],
            "tags": [["a", str(i)] for i in ids],
            "flag": [i % 2 == 0 for i in ids],
        },
        schema=SCHEMA,
    )


def encodings(data: bytes) -> dict[str, set[str]]:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    found: dict[str, set[str]] = {}
    for g in range(meta.num_row_groups):
        for c in range(meta.num_columns):
            column = meta.row_group(g).column(c)
            found.setdefault(column.path_in_schema, set()).update(column.encodings)
    return found


def test_repeating_columns_get_a_dictionary_distinct_ones_stay_plain() -> None:
    out = io.BytesIO()
    writer = ParquetWriter(out, SCHEMA)
    batches = [batch(0), batch(ROWS), batch(2 * ROWS)]
    writer.write(batches[0])
    writer.write_many(batches[1:])
    writer.close()

    data = out.getvalue()
    assert pq.read_table(io.BytesIO(data)) == pa.Table.from_batches(batches)
    used = encodings(data)
    assert "RLE_DICTIONARY" in used["region"]
    assert "RLE_DICTIONARY" in used["amount"]
    for plain in ("id", "ref", "tags.list.element", "flag"):
        assert "RLE_DICTIONARY" not in used[plain], plain


def test_a_file_of_no_rows_has_the_schema() -> None:
    out = io.BytesIO()
    writer = ParquetWriter(out, SCHEMA)
    writer.close()

    assert pq.read_table(io.BytesIO(out.getvalue())) == SCHEMA.empty_table()
