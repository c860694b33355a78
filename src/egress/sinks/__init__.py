"""File writers: CSV, JSONL and Parquet over a checksummed byte stream."""
