"""Saved map views of each user (the map page's "views" list and the video-wall rotation)."""

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

from layers.models.base import metadata

map_view = Table(
    "map_view",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("user_id", Integer, ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    # the page's URL state (centre, zoom, layers, mode, time window, selection) as a query string
    Column("state", Text, nullable=False),
    Column("rotate_s", Integer, nullable=False, server_default=text("30")),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("uq_map_view_user_name", "user_id", "name", unique=True),
)

__all__ = ["map_view"]
