"""Users, citizen field reports (with photos, status history and linked duplicates), audit, rate limits."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from layers.models.base import metadata

ROLES = (
    "admin",
    "leader",
    "planner",
    "operator",
    "gis_staff",
    "commune_staff",
    "citizen",
    "agency_staff",  # issue 21: bound to one agency (ma_don_vi) in admin_units
)
REPORT_STATUSES = (
    "received",
    "accepted",
    "info_requested",
    "assigned",
    "in_progress",
    "resolved",
    "rejected",
)
# Statuses whose SLA clock runs (the workflow's rules are in analytics.report_workflow).
OPEN_STATUSES = ("received", "accepted", "info_requested", "assigned", "in_progress")
# One Vietnamese name per status and category, equal to `value.<code>` in web_map/i18n.json
# (a test keeps them equal); mirrored into the field_reports layer's properties.
STATUS_VI = {
    "received": "Mới tiếp nhận",
    "accepted": "Đã thụ lý",
    "info_requested": "Chờ bổ sung thông tin",
    "assigned": "Đã phân công",
    "in_progress": "Đang xử lý",
    "resolved": "Đã giải quyết",
    "rejected": "Từ chối",
}
CATEGORY_VI = {
    "traffic": "Giao thông",
    "environment": "Môi trường",
    "urban_order": "Trật tự đô thị",
    "infrastructure": "Hạ tầng",
    "security": "An ninh trật tự",
    "other": "Khác",
}
RATINGS = ("hai_long", "chap_nhan", "khong_hai_long")

app_user = Table(
    "app_user",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    # Commune codes a commune_staff user may act on; enforced inside the queries.
    Column("admin_units", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_login_at", DateTime(timezone=True)),
    CheckConstraint("role IN " + str(ROLES), name="role_known"),
    CheckConstraint("username ~ '^[A-Za-z0-9_.@-]{2,64}$'", name="username_format"),
)

field_report = Table(
    "field_report",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("category", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("location_source", Text, nullable=False, server_default="point"),
    Column("commune_code", Text, nullable=False),
    Column("commune_name", Text, nullable=False, server_default=""),
    Column("status", Text, nullable=False, server_default="received"),
    Column("citizen_user_id", Integer, ForeignKey("app_user.id", ondelete="SET NULL")),
    # Name / phone / email: sensitive, returned only to permitted roles.
    Column("contact", JSONB),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("assigned_to", Text),
    Column("resolved_at", DateTime(timezone=True)),
    Column("resolution_note", Text),
    Column("rating", Text),
    Column("rated_at", DateTime(timezone=True)),
    Column("duplicate_count", Integer, nullable=False, server_default=text("0")),
    Column("overdue_alerted_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("status IN " + str(REPORT_STATUSES), name="status_known"),
    CheckConstraint("rating IS NULL OR rating IN " + str(RATINGS), name="rating_known"),
    Index("ix_field_report_geom", "geom", postgresql_using="gist"),
    Index("ix_field_report_commune_code_received_at", "commune_code", "received_at"),
    Index("ix_field_report_category_received_at", "category", "received_at"),
    Index("ix_field_report_citizen_user_id", "citizen_user_id"),
)

field_report_photo = Table(
    "field_report_photo",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "report_id", BigInteger, ForeignKey("field_report.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "kind IN ('submission','resolution','duplicate','information')", name="kind_known"
    ),
    Index("ix_field_report_photo_report_id", "report_id"),
)

# Append-only status history: BRIN on time keeps the index tiny as it grows.
field_report_event = Table(
    "field_report_event",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "report_id", BigInteger, ForeignKey("field_report.id", ondelete="CASCADE"), nullable=False
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("note", Text, nullable=False, server_default=""),
    Index("ix_field_report_event_report_id", "report_id"),
    Index("ix_field_report_event_at", "at", postgresql_using="brin"),
)

# A later submission of the same problem (same category, 50 m, 48 h): linked, not a new report.
field_report_link = Table(
    "field_report_link",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "report_id", BigInteger, ForeignKey("field_report.id", ondelete="CASCADE"), nullable=False
    ),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("citizen_user_id", Integer, ForeignKey("app_user.id", ondelete="SET NULL")),
    Column("description", Text, nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("contact", JSONB),
    Column("distance_m", Double, nullable=False),
    Index("ix_field_report_link_report_id", "report_id"),
    Index("ix_field_report_link_citizen_user_id", "citizen_user_id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("method", Text, nullable=False, server_default=""),
    Column("path", Text, nullable=False, server_default=""),
    Column("status", Integer),
    Column("ip", Text, nullable=False, server_default=""),
    Column("user_agent", Text, nullable=False, server_default=""),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_audit_log_at", "at", postgresql_using="brin"),
    Index("ix_audit_log_actor_at", "actor", "at"),
)

# Token buckets shared by every API process (so the limit holds with several replicas).
rate_bucket = Table(
    "rate_bucket",
    metadata,
    Column("key", Text, primary_key=True),
    Column("tokens", Double, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
