"""The incident tables as the models declare them are the tables the migrations build."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from layers.models import incidents
from layers.models.base import metadata

TABLES = {
    t.name
    for t in (
        incidents.sop,
        incidents.sop_version,
        incidents.incident,
        incidents.incident_link,
        incidents.incident_log,
        incidents.incident_task,
        incidents.incident_task_note,
    )
}


def _ours(obj: Any, name: str | None, kind: str, reflected: bool, other: Any) -> bool:
    table = obj.table.name if kind != "table" and hasattr(obj, "table") else name
    return table in TABLES


def test_autogenerate_finds_nothing_to_change_in_the_incident_tables(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": True, "include_object": _ours},
        )
        assert compare_metadata(ctx, metadata) == []
