"""Report workflow steps accept / request information / reopen; layer name field and visibility.

Field reports gain the statuses `accepted` (thụ lý) and `info_requested` (waiting for the
citizen), and photos of kind `information` (the citizen's answer). The layer catalogue gains
`name_field` (the property that names a feature) and `visibility` (who may read the layer:
public, signed-in, or a list of roles), which replaces the `sensitive` flag: sensitive layers
become role-restricted with the roles the hard-coded table used to give them.

Revision ID: 0014_reports_workflow
Revises: 0010_source_key_partial
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from alembic import op

revision = "0014_reports_workflow"
down_revision = "0012_storage"
branch_labels = None
depends_on = None

NEW_STATUSES = (
    "('received','accepted','info_requested','assigned','in_progress','resolved','rejected')"
)
OLD_STATUSES = "('received','assigned','in_progress','resolved','rejected')"
# The roles the old hard-coded SENSITIVE_LAYER_ROLES table gave each sensitive layer.
ROLES_BY_SLUG = {
    "land_parcels": ["admin", "planner", "gis_staff", "leader"],
    "cameras": ["admin", "operator", "leader", "gis_staff"],
}
DEFAULT_ROLES = ["admin", "leader", "planner", "gis_staff", "operator"]


def upgrade() -> None:
    op.drop_constraint("ck_field_report_status_known", "field_report", type_="check")
    op.create_check_constraint(
        "ck_field_report_status_known", "field_report", "status IN " + NEW_STATUSES
    )
    op.drop_constraint("ck_field_report_photo_kind_known", "field_report_photo", type_="check")
    op.create_check_constraint(
        "ck_field_report_photo_kind_known",
        "field_report_photo",
        "kind IN ('submission','resolution','duplicate','information')",
    )
    op.add_column("layer", sa.Column("name_field", sa.Text))
    op.add_column(
        "layer",
        sa.Column(
            "visibility",
            JSONB,
            nullable=False,
            server_default=sa.text("""'{"access": "public", "roles": []}'::jsonb"""),
        ),
    )
    conn = op.get_bind()
    for slug, roles in ROLES_BY_SLUG.items():
        conn.execute(
            sa.text(
                "UPDATE layer SET visibility = jsonb_build_object('access', 'roles', 'roles', "
                "to_jsonb(CAST(:roles AS text[]))) WHERE slug = :slug AND sensitive"
            ),
            {"roles": roles, "slug": slug},
        )
    conn.execute(
        sa.text(
            "UPDATE layer SET visibility = jsonb_build_object('access', 'roles', 'roles', "
            "to_jsonb(CAST(:roles AS text[]))) WHERE sensitive AND visibility->>'access' = 'public'"
        ),
        {"roles": DEFAULT_ROLES},
    )


def downgrade() -> None:
    op.execute("UPDATE layer SET sensitive = true WHERE visibility->>'access' <> 'public'")
    op.drop_column("layer", "visibility")
    op.drop_column("layer", "name_field")
    op.execute(
        "UPDATE field_report SET status = 'received' WHERE status IN ('accepted','info_requested')"
    )
    op.execute("DELETE FROM field_report_photo WHERE kind = 'information'")
    op.drop_constraint("ck_field_report_photo_kind_known", "field_report_photo", type_="check")
    op.create_check_constraint(
        "ck_field_report_photo_kind_known",
        "field_report_photo",
        "kind IN ('submission','resolution','duplicate')",
    )
    op.drop_constraint("ck_field_report_status_known", "field_report", type_="check")
    op.create_check_constraint(
        "ck_field_report_status_known", "field_report", "status IN " + OLD_STATUSES
    )
