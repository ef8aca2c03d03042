"""Tables of the ingest area: quarantined rows, connector state, and import_batch's extra columns."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.models.base import metadata
from layers.models.core import import_batch

# import_batch lives in core (0001); ingest adds these columns in 0002.
import_batch.append_column(Column("connector", Text))
import_batch.append_column(Column("attempts", Integer, nullable=False, server_default=text("1")))
import_batch.append_column(
    Column("progress", JSONB, nullable=False, server_default=text("'{}'::jsonb"))
)
Index("ix_import_batch_layer_id", import_batch.c.layer_id, import_batch.c.started_at)

# Quarantined rows: never dropped silently, kept with their original values.
import_reject = Table(
    "import_reject",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column(
        "batch_id", BigInteger, ForeignKey("import_batch.id", ondelete="CASCADE"), nullable=False
    ),
    Column("row_number", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    Column("original", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_import_reject_batch_id", "batch_id", "row_number"),
)

# Per-connector cursor (incremental fetch) and last outcome.
connector_state = Table(
    "connector_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("cursor", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("last_run_at", DateTime(timezone=True)),
    Column("last_status", Text, nullable=False, server_default=""),
    Column("last_batch_id", BigInteger),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True)),
)
