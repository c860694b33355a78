"""The services' answers in seed 002's shapes."""

from __future__ import annotations

from egress.api.faces.noco.schemas import ExtractionOut
from egress.services.element_configurations import ElementConfiguration


def extraction_out(e: ElementConfiguration) -> ExtractionOut:
    r = e.extract.configuration
    columns = e.kept.get("columnConfiguration") or [
        {"name": name} for name in r.fields or [f.name for f in e.template.fields]
    ]
    output = e.kept.get("outputConfiguration") or {"createNewWorkbook": True, "title": r.name}
    cron = r.schedules[0] if r.schedules else None
    return ExtractionOut(
        id=r.id,
        title=r.name,
        elementType=e.element_type,
        elementId=e.element_id,
        inputTableId=e.template.id,
        primaryKeyColumnId=e.key_ids,
        outputConfiguration={**output, "tableId": e.extract.data_table_id},
        storeExtractedData=r.data_table is not None,
        scheduleType="MANUAL" if cron is None else "CRON",
        schedule=None if cron is None else {"cronExpression": cron.cron, "timezone": cron.timezone},
        columnConfiguration=columns,
        extractionMode="BASIC",
    )
