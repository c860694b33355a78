"""A table through one of Egress's format writers, as the bytes of the file."""

from __future__ import annotations

import io

import pyarrow as pa

from egress.sinks.writers import WRITERS


def written(fmt: str, table: pa.Table) -> bytes:
    out = io.BytesIO()
    writer = WRITERS[fmt](out, table.schema)
    for batch in table.to_batches():
        writer.write(batch)
    writer.close()
    return out.getvalue()
