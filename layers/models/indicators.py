"""Tables of the indicators area: definitions, subjects, observations and their revisions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

from layers.models.base import metadata

# Synced from layers.indicators.catalog (the source of truth) on first use.
indicator = Table(
    "indicator",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name_vi", Text, nullable=False),
    Column("name_en", Text, nullable=False),
    Column("unit", Text, nullable=False, server_default=""),
    Column("sector", Text, nullable=False),
    Column("source_system", Text, nullable=False, server_default=""),
    Column("frequency", Text, nullable=False),
    Column("rollup", Text, nullable=False),
    Column("numerator", Text),
    Column("denominator", Text),
    Column("scale", Double, nullable=False, server_default=text("1")),
    Column("higher_is_better", Boolean),
    Column("subject_layer", Text),
    Column("stock", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "frequency IN ('day','month','quarter','year','school_year')", name="frequency_known"
    ),
    CheckConstraint("rollup IN ('sum','mean','rate')", name="rollup_known"),
    CheckConstraint(
        "(rollup = 'rate') = (numerator IS NOT NULL AND denominator IS NOT NULL)",
        name="rate_has_parts",
    ),
)

# What an observation is about: a feature of a layer (layer slug + source_key) or an admin
# unit (layer '' + admin_unit.code). commune_code is where feature subjects roll up to.
indicator_subject = Table(
    "indicator_subject",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("layer", Text, nullable=False, server_default=""),
    Column("key", Text, nullable=False),
    Column("commune_code", Text),
    Column("is_province", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("layer", "key"),
    Index("ix_indicator_subject_commune_code", "commune_code"),
)

# The current value per (indicator, subject, period start); corrections update in place.
# indicator_code is checked against the catalog in code (layers.indicators.store), not by a
# foreign key: per-row FK triggers were a third of the bulk upsert time.
indicator_observation = Table(
    "indicator_observation",
    metadata,
    Column("indicator_code", Text, nullable=False),
    Column(
        "subject_id",
        Integer,
        ForeignKey("indicator_subject.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("value", Double, nullable=False),
    Column("import_batch_id", BigInteger, ForeignKey("import_batch.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("indicator_code", "subject_id", "period_start"),
    CheckConstraint("period_end >= period_start", name="period_order"),
    # Range scans of one indicator (values, latest period) do not go through subject_id.
    Index("ix_indicator_observation_code_period", "indicator_code", "period_start"),
)

# Append-only history of replaced values: when a correction changes an observation, the
# value it replaces is kept here with the batch that had written it and the batch that
# replaced it. History of a value = its revisions (oldest first) + the current row; first
# loads write no revisions, so they cost one insert per value.
indicator_observation_revision = Table(
    "indicator_observation_revision",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("indicator_code", Text, nullable=False),
    Column("subject_id", Integer, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("value", Double, nullable=False),
    Column("import_batch_id", BigInteger),
    Column("written_at", DateTime(timezone=True), nullable=False),
    Column("replaced_by_batch_id", BigInteger),
    Column("replaced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_indicator_observation_revision_key", "indicator_code", "subject_id", "period_start"),
)

# Derived-indicator jobs: the source layer's data_version each job last computed from.
indicator_job_state = Table(
    "indicator_job_state",
    metadata,
    Column("job", Text, primary_key=True),
    Column("source_version", BigInteger, nullable=False),
    Column("refreshed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
