"""State shared by every API replica (issue 23): secrets kept in the database, not on one disk."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Table, Text, func

from layers.models.base import metadata

# One row per named secret ("signing_key"); created once by whichever replica starts first.
cluster_secret = Table(
    "cluster_secret",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

__all__ = ["cluster_secret"]
