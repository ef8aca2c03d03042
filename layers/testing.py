"""Throwaway databases for tests and benchmarks, in the project's PostGIS."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from psycopg import sql
from sqlalchemy import Engine

from layers import cluster, db
from layers.settings import Settings


def _admin_conninfo(settings: Settings) -> str:
    return db.conninfo(settings, "postgres")


def create_database(base_settings: Settings, prefix: str) -> str:
    """Create an empty database with a unique name; returns the name."""
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with db.connect(_admin_conninfo(base_settings)) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(base_settings: Settings, name: str) -> None:
    """Drop a database made by create_database, even with connections still open."""
    with db.connect(_admin_conninfo(base_settings)) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def settings_for(
    base_settings: Settings, name: str, state_dir: Path, parcels: int = 3000
) -> Settings:
    """Settings pointing every component at database `name`, with a private state dir."""
    return base_settings.model_copy(
        update={
            "database_url": cluster.database_url(base_settings, name),
            "state_dir": state_dir,
            "demo_parcels": parcels,
        }
    )


def remove_workflow_reports(engine: Engine) -> None:
    """Put a shared test database's field reports back as the demo seeded them.

    Deletes workflow reports, their mirrored features in the field_reports layer and the
    overdue alerts they raised, so later tests that read field_reports see the demo only.
    """
    from sqlalchemy import select

    from layers.features.registry import mark_layer_changed
    from layers.models.analytics import alert, alert_rule
    from layers.models.core import feature, layer
    from layers.models.reports import field_report

    with engine.begin() as conn:
        conn.execute(field_report.delete())
        layer_id = conn.execute(
            select(layer.c.id).where(layer.c.slug == "field_reports")
        ).scalar_one()
        conn.execute(
            feature.delete().where(
                feature.c.layer_id == layer_id,
                feature.c.properties["source"].astext == "workflow",
            )
        )
        mark_layer_changed(conn, layer_id)
        rule = select(alert_rule.c.id).where(alert_rule.c.slug == "report_overdue")
        conn.execute(alert.delete().where(alert.c.rule_id.in_(rule.scalar_subquery())))
        conn.execute(alert_rule.delete().where(alert_rule.c.slug == "report_overdue"))
