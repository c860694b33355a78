"""Use cases shared by every face of the API (native routes, seed adapters, CLI)."""
