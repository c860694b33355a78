"""Egress: self-hosted asynchronous data extraction and bulk export."""

__version__ = "0.1.0"
