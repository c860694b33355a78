"""Building configurations in tests: one place for the defaults every test would repeat."""

from __future__ import annotations

from typing import Any

from egress.container import Container
from egress.services import configurations


def configuration_values(template_id: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A complete set of configuration values (CSV to storage), with ``overrides`` applied."""
    values: dict[str, Any] = {
        "name": name,
        "template_id": template_id,
        "fields": None,
        "format": "csv",
        "compression": "none",
        "destination": {"type": "storage", "path": "out"},
        "file_name_pattern": None,
        "start_date": None,
        "end_date": None,
    }
    values.update(overrides)
    return values


def submitted_configuration(
    c: Container, workspace_id: str, template_id: str, name: str, **overrides: Any
) -> str:
    """Create a configuration through the service (validated) and submit it; its id."""
    record = configurations.create(
        c, workspace_id, configuration_values(template_id, name, **overrides)
    )
    c.configurations.update(workspace_id, record.id, {"status": "SUBMITTED"})
    return record.id
