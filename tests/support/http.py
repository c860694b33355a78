"""The HTTP steps most end-to-end tests start with: a SQLite connection and a submitted
configuration on its first table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"


def sqlite_connection(http: httpx.Client, db: Path, name: str) -> str:
    r = http.post(
        f"{API}/connections", json={"name": name, "type": "sqlite", "settings": {"path": str(db)}}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def template(http: httpx.Client, connection_id: str, name: str) -> dict[str, Any]:
    r = http.get(f"{API}/templates", params={"connectionId": connection_id})
    assert r.status_code == 200, r.text
    found: dict[str, Any] = next(t for t in r.json()["data"] if t["name"] == name)
    return found


def sqlite_template(http: httpx.Client, db: Path, connection_name: str, table: str) -> str:
    """Register ``db`` as a connection and return the id of the template of ``table``."""
    connection = sqlite_connection(http, db, connection_name)
    return str(template(http, connection, f"main.{table}")["id"])


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
    submitted = http.post(f"{API}/extraction-configurations/{cfg}/submit")
    assert submitted.status_code == 200, submitted.text
    return cfg
