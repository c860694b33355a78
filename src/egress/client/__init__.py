"""Python SDK for the Egress REST API (httpx)."""

from egress.client.client import ApiError, Client

__all__ = ["ApiError", "Client"]
