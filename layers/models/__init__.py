"""SQLAlchemy Core tables of IOC Map; Alembic migrations target `metadata`."""

from layers.models.base import metadata
from layers.models.core import admin_unit, feature, import_batch, layer
from layers.models.ingest import connector_state, import_reject  # noqa: F401

__all__ = ["admin_unit", "feature", "import_batch", "layer", "metadata"]
