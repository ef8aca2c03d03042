"""Tables of the vision area: camera calibration, zones, live state and detection events.

The camera itself is a feature of the `cameras` layer (position, pose, stream URL);
these tables hang off its `camera_id` property.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from layers.models.base import metadata

ZONE_KINDS = ("forbidden", "no_parking", "counting_line", "lane", "area")
CAMERA_STATUSES = ("unknown", "starting", "online", "offline", "stopped", "error")

camera_calibration = Table(
    "camera_calibration",
    metadata,
    Column("camera_id", Text, primary_key=True),
    Column("ground_crs", Text, nullable=False, server_default="local"),
    Column("origin_lon", Double, nullable=False),
    Column("origin_lat", Double, nullable=False),
    Column("image_width", Integer, nullable=False),
    Column("image_height", Integer, nullable=False),
    Column("control_points", JSONB, nullable=False),
    Column("homography", JSONB, nullable=False),
    Column("reprojection_error_m", Double, nullable=False),
    Column("max_error_m", Double, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("reprojection_error_m <= max_error_m", name="error_within_limit"),
)

camera_zone = Table(
    "camera_zone",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("camera_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("params", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "kind IN ('forbidden','no_parking','counting_line','lane','area')", name="kind_known"
    ),
    Index("ix_camera_zone_camera_id", "camera_id"),
)

camera_state = Table(
    "camera_state",
    metadata,
    Column("camera_id", Text, primary_key=True),
    Column("status", Text, nullable=False, server_default="unknown"),
    Column("detail", Text, nullable=False, server_default=""),
    Column("last_frame_at", DateTime(timezone=True)),
    Column("last_event_at", DateTime(timezone=True)),
    Column("frame_path", Text),
    Column("overlay", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("worker_pid", Integer),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('unknown','starting','online','offline','stopped','error')",
        name="status_known",
    ),
)

# RANGE-partitioned by month on observed_at (partitions made by vision_ensure_event_partition);
# BRIN on time because rows arrive in time order, so block ranges stay tight and tiny.
detection_event = Table(
    "detection_event",
    metadata,
    Column(
        "id",
        BigInteger,
        nullable=False,
        server_default=text("nextval('detection_event_id_seq')"),
    ),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("camera_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("class_name", Text),
    Column("confidence", Double),
    Column("track_id", Integer),
    Column("zone_id", Integer),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("snapshot_path", Text),
    Column("attributes", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Set by workers publishing through the broker (issue 23): a redelivered event is stored once.
    Column("event_uid", UUID(as_uuid=True)),
    PrimaryKeyConstraint("observed_at", "id"),
    Index("uq_detection_event_uid", "event_uid", "observed_at", unique=True),
    Index("ix_detection_event_observed_at", "observed_at", postgresql_using="brin"),
    Index("ix_detection_event_camera_id_observed_at", "camera_id", "observed_at"),
    Index("ix_detection_event_geom", "geom", postgresql_using="gist"),
    postgresql_partition_by="RANGE (observed_at)",
)
