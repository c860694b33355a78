"""The HTTP steps most end-to-end tests start with: a SQLite connection and a submitted
configuration on its first table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"


def sqlite_template(http: httpx.Client, db: Path, connection_name: str, table: str) -> str:
    """Register ``db`` as a connection and return the id of the template of ``table``."""
    r = http.post(
        f"{API}/connections",
        json={"name": connection_name, "type": "sqlite", "settings": {"path": str(db)}},
    )
    assert r.status_code == 201, r.text
    templates = http.get(f"{API}/templates", params={"connectionId": r.json()["id"]}).json()
    return str(next(t["id"] for t in templates["data"] if t["name"] == f"main.{table}"))


def submitted_configuration(http: httpx.Client, template_id: str, name: str, **body: Any) -> str:
    """Create (CSV to storage unless ``body`` says otherwise) and submit; returns its id."""
    payload = {
        "name": name,
        "templateId": template_id,
        "format": "csv",
        "destination": {"type": "storage", "path": "out"},
        **body,
    }
    r = http.post(f"{API}/extraction-configurations", json=payload)
    assert r.status_code == 201, r.text
    cfg = str(r.json()["id"])
    assert http.post(f"{API}/extraction-configurations/{cfg}/submit").status_code == 200
    return cfg
