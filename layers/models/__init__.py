"""SQLAlchemy Core tables of IOC Map; Alembic migrations target `metadata`."""

from layers.models.analytics import alert, alert_rule, h3_agg, h3_feature_state, h3_state  # noqa: F401
from layers.models.base import metadata
from layers.models.cluster import cluster_secret  # noqa: F401
from layers.models.core import admin_unit, feature, import_batch, layer
from layers.models.incidents import (  # noqa: F401
    incident,
    incident_link,
    incident_log,
    incident_task,
    incident_task_note,
    sop,
    sop_version,
)
from layers.models.indicators import (  # noqa: F401
    indicator,
    indicator_job_state,
    indicator_observation,
    indicator_observation_revision,
    indicator_subject,
)
from layers.models.ingest import connector_state, import_reject  # noqa: F401
from layers.models.mapviews import map_view  # noqa: F401
from layers.models.rasters import raster_layer  # noqa: F401
from layers.models.reports import app_user, audit_log, field_report, rate_bucket  # noqa: F401
from layers.models.vision import camera_calibration, camera_state, camera_zone, detection_event  # noqa: F401

__all__ = ["admin_unit", "feature", "import_batch", "layer", "metadata"]
