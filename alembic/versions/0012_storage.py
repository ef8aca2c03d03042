"""Vision's alert rules installed once, here, instead of upserted on every camera event batch.

One disabled `alert_rule` per alerting vision event type (slug `vision_<type>`): the analytics
evaluator skips them, and vision.alerting writes its alerts under them. Existing databases
already hold the rows vision created on the fly; they are left as they are.

Revision ID: 0012_storage
Revises: 0010_source_key_partial
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from alembic import op

revision = "0012_storage"
down_revision = "0010_source_key_partial"
branch_labels = None
depends_on = None

# (event type, severity, Vietnamese title): frozen copy of vision.alerting at this revision.
VISION_RULES = (
    ("intrusion", "critical", "Xâm nhập khu vực cấm"),
    ("wrong_way", "critical", "Đi ngược chiều"),
    ("speeding", "warning", "Vượt quá tốc độ"),
    ("stopped_vehicle", "warning", "Dừng đỗ sai quy định"),
    ("crowd", "warning", "Tụ tập đông người"),
    ("congestion", "warning", "Ùn tắc giao thông"),
)


def upgrade() -> None:
    insert = sa.text(
        "INSERT INTO alert_rule (slug, name, severity, enabled, spec) "
        "VALUES (:slug, :name, :severity, false, CAST(:spec AS jsonb)) "
        "ON CONFLICT (slug) DO NOTHING"
    )
    for event_type, severity, title in VISION_RULES:
        op.get_bind().execute(
            insert,
            {
                "slug": f"vision_{event_type}",
                "name": f"Camera: {title}",
                "severity": severity,
                "spec": json.dumps({"source": "vision", "event_type": event_type}),
            },
        )


def downgrade() -> None:
    # Alerts written under these rules keep them alive (FK); only unused rules go.
    op.execute(
        "DELETE FROM alert_rule r WHERE r.slug LIKE 'vision\\_%' "
        "AND NOT EXISTS (SELECT 1 FROM alert a WHERE a.rule_id = r.id)"
    )
