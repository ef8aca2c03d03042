"""Vision: camera calibration, zones, live state, time-partitioned detection events.

Revision ID: 0004_vision
Revises: 0003_analytics
Create Date: 2026-11-22
"""

from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = "0004_vision"
down_revision = "0003_analytics"
branch_labels = None
depends_on = None

JSONB_EMPTY = sa.text("'{}'::jsonb")

# Month partitions are created on demand from Python with a bound timestamp; the
# identifier and bounds are quoted by format() inside the database, never by Python.
ENSURE_PARTITION_FN = """
CREATE OR REPLACE FUNCTION vision_ensure_event_partition(ts timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m_start timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    m_end timestamptz := m_start + interval '1 month';
    name text := 'detection_event_' || to_char(m_start AT TIME ZONE 'UTC', 'YYYY"m"MM');
BEGIN
    IF to_regclass(name) IS NULL THEN
        -- Two camera workers crossing a month boundary together must not race the DDL.
        PERFORM pg_advisory_xact_lock(hashtext(name));
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF detection_event FOR VALUES FROM (%L) TO (%L)',
            name, m_start, m_end
        );
    END IF;
    RETURN name;
END;
$$;
"""


def upgrade() -> None:
    op.create_table(
        "camera_calibration",
        sa.Column("camera_id", sa.Text, primary_key=True),
        sa.Column("ground_crs", sa.Text, nullable=False, server_default="local"),
        sa.Column("origin_lon", sa.Double, nullable=False),
        sa.Column("origin_lat", sa.Double, nullable=False),
        sa.Column("image_width", sa.Integer, nullable=False),
        sa.Column("image_height", sa.Integer, nullable=False),
        sa.Column("control_points", postgresql.JSONB, nullable=False),
        sa.Column("homography", postgresql.JSONB, nullable=False),
        sa.Column("reprojection_error_m", sa.Double, nullable=False),
        sa.Column("max_error_m", sa.Double, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "reprojection_error_m <= max_error_m",
            name="ck_camera_calibration_error_within_limit",
        ),
    )
    op.create_table(
        "camera_zone",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("camera_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("GEOMETRY", srid=4326, spatial_index=False),
            nullable=False,
        ),
        sa.Column("params", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "kind IN ('forbidden','no_parking','counting_line','lane','area')",
            name="ck_camera_zone_kind_known",
        ),
    )
    op.create_index("ix_camera_zone_camera_id", "camera_zone", ["camera_id"])
    op.create_table(
        "camera_state",
        sa.Column("camera_id", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("last_frame_at", sa.DateTime(timezone=True)),
        sa.Column("last_event_at", sa.DateTime(timezone=True)),
        sa.Column("frame_path", sa.Text),
        sa.Column("overlay", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column("worker_pid", sa.Integer),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('unknown','starting','online','offline','stopped','error')",
            name="ck_camera_state_status_known",
        ),
    )

    op.execute("CREATE SEQUENCE detection_event_id_seq AS bigint")
    op.create_table(
        "detection_event",
        sa.Column(
            "id",
            sa.BigInteger,
            nullable=False,
            server_default=sa.text("nextval('detection_event_id_seq')"),
        ),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("camera_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("class_name", sa.Text),
        sa.Column("confidence", sa.Double),
        sa.Column("track_id", sa.Integer),
        sa.Column("zone_id", sa.Integer),
        sa.Column("geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False)),
        sa.Column("snapshot_path", sa.Text),
        sa.Column("attributes", postgresql.JSONB, nullable=False, server_default=JSONB_EMPTY),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("observed_at", "id", name="pk_detection_event"),
        postgresql_partition_by="RANGE (observed_at)",
    )
    op.execute("ALTER SEQUENCE detection_event_id_seq OWNED BY detection_event.id")
    op.create_index(
        "ix_detection_event_observed_at",
        "detection_event",
        ["observed_at"],
        postgresql_using="brin",
    )
    op.create_index(
        "ix_detection_event_camera_id_observed_at", "detection_event", ["camera_id", "observed_at"]
    )
    op.create_index("ix_detection_event_geom", "detection_event", ["geom"], postgresql_using="gist")
    op.execute(ENSURE_PARTITION_FN)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS vision_ensure_event_partition(timestamptz)")
    op.drop_table("detection_event")  # drops every partition with it
    op.execute("DROP SEQUENCE IF EXISTS detection_event_id_seq")
    op.drop_table("camera_state")
    op.drop_index("ix_camera_zone_camera_id", table_name="camera_zone")
    op.drop_table("camera_zone")
    op.drop_table("camera_calibration")
