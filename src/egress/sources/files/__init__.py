"""Files and folders of CSV, Parquet and JSONL (optionally gzip) on disk or in an S3 bucket.

``settings`` (where a connection points and how it is reached), ``formats`` (which file is
which format and how Arrow reads it), ``schemas`` (schemas kept by file version) and
``source`` (listing, the catalog, reads)."""

from egress.sources.files.formats import DataFile, data_format, exact_type
from egress.sources.files.settings import (
    FilesSettings,
    admit,
    endpoint_address,
)
from egress.sources.files.source import FilesSource

__all__ = [
    "DataFile",
    "FilesSettings",
    "FilesSource",
    "admit",
    "data_format",
    "endpoint_address",
    "exact_type",
]
