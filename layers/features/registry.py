"""The typed layer registry: specs, creation (with the layer's partition) and catalog reads."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, func, select, text, update

from layers.errors import InvalidInputError, NotFoundError
from layers.features.partitions import drop_partition, ensure_partition
from layers.models import feature, layer

log = logging.getLogger(__name__)

Sector = Literal[
    "admin",
    "health",
    "education",
    "tourism",
    "land",
    "security",
    "traffic",
    "feedback",
    "environment",
    "infrastructure",
    "economy",
    "administration",
    "other",
]
GeometryType = Literal[
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "Geometry"
]


class LayerStyle(BaseModel):
    """Default map style of a layer, as the web map draws it."""

    model_config = ConfigDict(extra="forbid")

    fill_color: tuple[int, int, int, int] = (30, 136, 229, 160)
    line_color: tuple[int, int, int, int] = (255, 255, 255, 200)
    line_width: float = 1.0
    point_radius: float = 6.0
    icon: str | None = None
    color_property: str | None = Field(
        default=None, description="Categorical property whose values pick colours from `palette`."
    )
    palette: dict[str, tuple[int, int, int, int]] = Field(default_factory=dict)
    min_zoom: int = 0


Access = Literal["public", "signed_in", "roles"]
# What the old `sensitive` flag meant when a spec sets it without a visibility.
DEFAULT_RESTRICTED_ROLES = ("admin", "leader", "planner", "gis_staff", "operator")


class LayerVisibility(BaseModel):
    """Who may read a layer: anyone, any signed-in user, or the listed roles (admin always)."""

    model_config = ConfigDict(extra="forbid")

    access: Access = "public"
    roles: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _roles_only_when_restricted(self) -> LayerVisibility:
        from layers.models.reports import ROLES

        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown roles: {', '.join(unknown)}")
        if self.access == "roles" and not self.roles:
            raise ValueError("visibility 'roles' needs at least one role")
        if self.access != "roles":
            self.roles = []
        return self


class LayerSpec(BaseModel):
    """Everything the catalog records about a layer; the input to create_or_update_layer."""

    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$")
    title_vi: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    description: str = ""
    sector: Sector
    geometry_type: GeometryType
    property_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    default_style: LayerStyle = Field(default_factory=LayerStyle)
    source_system: str = ""
    synthetic: bool = False
    license: str = ""
    attribution: str = ""
    time_field: str | None = None
    # Kept in step with `visibility` (True when not public) for readers of the old flag.
    sensitive: bool = False
    kind: Literal["vector", "raster"] = "vector"
    # The property that names a feature (shown as its title instead of its id).
    name_field: str | None = Field(default=None, max_length=63)
    visibility: LayerVisibility = Field(default_factory=LayerVisibility)

    @model_validator(mode="after")
    def _visibility_from_sensitive(self) -> LayerSpec:
        if self.sensitive and self.visibility.access == "public":
            self.visibility = LayerVisibility(access="roles", roles=list(DEFAULT_RESTRICTED_ROLES))
        self.sensitive = self.visibility.access != "public"
        return self


class LayerInfo(LayerSpec):
    """A catalog row as read back, with its id, version and statistics."""

    id: int
    data_version: int
    created_at: datetime
    updated_at: datetime
    feature_count: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    time_extent: tuple[datetime, datetime] | None = None


_SPEC_FIELDS = tuple(LayerSpec.model_fields)


def create_or_update_layer(conn: Connection, spec: LayerSpec) -> int:
    """Insert or update a layer by slug, creating its feature partition; returns the layer id.

    updated_at only moves when something in the spec actually changed, so re-seeding is a no-op.
    """
    values = spec.model_dump(mode="json")
    existing = conn.execute(select(layer).where(layer.c.slug == spec.slug)).mappings().first()
    if existing is None:
        layer_id = int(
            conn.execute(layer.insert().values(**values).returning(layer.c.id)).scalar_one()
        )
    else:
        layer_id = int(existing["id"])
        current = {k: existing[k] for k in _SPEC_FIELDS}
        if LayerSpec.model_validate(current).model_dump(mode="json") != values:
            conn.execute(
                update(layer).where(layer.c.id == layer_id).values(**values, updated_at=func.now())
            )
            # In-memory layer versions (tile endpoint) are dropped on this channel.
            notify_layer_changed(conn, f"{layer_id}:spec")
    ensure_partition(conn, layer_id)
    return layer_id


def delete_layer(conn: Connection, slug: str) -> None:
    """Remove a layer, its partition and its features."""
    info = get_layer(conn, slug)
    drop_partition(conn, info.id)
    conn.execute(layer.delete().where(layer.c.id == info.id))
    notify_layer_changed(conn, f"{info.id}:deleted")


def _row_to_info(row: Any) -> LayerInfo:
    data = {k: v for k, v in dict(row).items() if k in LayerInfo.model_fields}
    return LayerInfo.model_validate(data)


def layer_id_of(conn: Connection, slug: str) -> int | None:
    """The id of the layer with this slug, or None."""
    found = conn.execute(select(layer.c.id).where(layer.c.slug == slug)).scalar()
    return None if found is None else int(found)


def layer_slugs(conn: Connection) -> list[str]:
    """Every layer's slug, in creation order."""
    return [str(r[0]) for r in conn.execute(select(layer.c.slug).order_by(layer.c.id))]


def find_layer(conn: Connection, slug: str) -> LayerInfo | None:
    """Catalog entry of one layer, or None when there is no such layer."""
    row = conn.execute(select(layer).where(layer.c.slug == slug)).mappings().first()
    return None if row is None else _row_to_info(row)


def layer_visibilities(conn: Connection, slugs: list[str]) -> dict[str, dict[str, Any]]:
    """The catalogue visibility of each of `slugs` that exists (the access policy reads it)."""
    rows = conn.execute(select(layer.c.slug, layer.c.visibility).where(layer.c.slug.in_(slugs)))
    return {str(slug): dict(vis) for slug, vis in rows}


def get_layer(conn: Connection, slug: str) -> LayerInfo:
    """Catalog entry of one layer, or NotFoundError naming the slug."""
    row = conn.execute(select(layer).where(layer.c.slug == slug)).mappings().first()
    if row is None:
        raise NotFoundError(
            f"layer '{slug}' does not exist", slug=slug, i18n="err.registry.layer_does_not_exist"
        )
    return _row_to_info(row)


def list_layers(conn: Connection, with_stats: bool = True) -> list[LayerInfo]:
    """Every layer, ordered by sector and slug, with feature counts and bboxes when asked."""
    rows = conn.execute(select(layer).order_by(layer.c.sector, layer.c.slug)).mappings().all()
    infos = [_row_to_info(r) for r in rows]
    if not with_stats or not infos:
        return infos
    stats = layer_stats(conn)
    for info in infos:
        count, bbox, time_extent = stats.get(info.id, (0, None, None))
        info.feature_count = count
        info.bbox = bbox
        info.time_extent = time_extent
    return infos


def layer_stats(
    conn: Connection,
) -> dict[
    int, tuple[int, tuple[float, float, float, float] | None, tuple[datetime, datetime] | None]
]:
    """Feature count, bbox and time extent per layer id."""
    extent = func.ST_Extent(feature.c.geom)
    stmt = select(
        feature.c.layer_id,
        func.count().label("n"),
        func.ST_XMin(extent).label("xmin"),
        func.ST_YMin(extent).label("ymin"),
        func.ST_XMax(extent).label("xmax"),
        func.ST_YMax(extent).label("ymax"),
        func.min(feature.c.observed_at).label("t0"),
        func.max(feature.c.observed_at).label("t1"),
    ).group_by(feature.c.layer_id)
    out: dict[
        int,
        tuple[int, tuple[float, float, float, float] | None, tuple[datetime, datetime] | None],
    ] = {}
    # This scan locks every partition; an import swapping one in waits on those locks while
    # holding its own. Give up early (lock_not_available, a 503 to the API) rather than wait
    # into a deadlock whose victim could be the import.
    conn.execute(text("SET LOCAL lock_timeout = '300ms'"))
    rows = conn.execute(stmt).mappings().all()
    conn.execute(text("SET LOCAL lock_timeout TO DEFAULT"))
    for r in rows:
        bbox = None if r["xmin"] is None else (r["xmin"], r["ymin"], r["xmax"], r["ymax"])
        times = None if r["t0"] is None else (r["t0"], r["t1"])
        out[int(r["layer_id"])] = (int(r["n"]), bbox, times)
    return out


def property_names(info: LayerSpec) -> list[str]:
    """Property names the layer's JSON Schema declares."""
    props = info.property_schema.get("properties", {})
    return list(props) if isinstance(props, dict) else []


def require_property(info: LayerSpec, name: str) -> str:
    """Return `name` if the layer declares it, else InvalidInputError listing what it has."""
    names = property_names(info)
    if name not in names:
        raise InvalidInputError(
            f"layer '{info.slug}' has no property '{name}'; it has: {', '.join(names) or 'none'}",
            property=name,
            i18n="err.registry.layer_has_no_property_it",
            layer=info.slug,
            name=name,
            props=", ".join(names) or "—",
        )
    return name


def mark_layer_changed(conn: Connection, layer_id: int) -> int:
    """Bump the layer's data_version and notify listeners; returns the new version.

    This is the stale-marking hook: tile caches and H3 aggregates compare their stored
    version against data_version, and the NOTIFY lets running API processes react at once.
    """
    version = int(
        conn.execute(
            update(layer)
            .where(layer.c.id == layer_id)
            .values(data_version=layer.c.data_version + 1, updated_at=func.now())
            .returning(layer.c.data_version)
        ).scalar_one()
    )
    notify_layer_changed(conn, f"{layer_id}:{version}")
    return version


# Set in a connection's info when it changed a layer; layers.features.layer_versions reads it at commit
# so this process's cached layer versions are dropped without waiting for the NOTIFY.
LAYER_CHANGED_INFO = "iocmap_layer_changed"


def notify_layer_changed(conn: Connection, payload: str) -> None:
    """NOTIFY iocmap_layer_changed (delivered at commit) and flag the connection for this process."""
    conn.execute(text("SELECT pg_notify('iocmap_layer_changed', :payload)"), {"payload": payload})
    conn.info[LAYER_CHANGED_INFO] = True


async def wake_on_layer_change(conninfo: str, wake: asyncio.Event) -> None:
    """Set `wake` at every iocmap_layer_changed NOTIFY, forever (reconnecting after 5 s)."""
    import psycopg
    from psycopg import sql

    from layers.db import connect_async
    from layers.sql import ident

    while True:
        try:
            async with await connect_async(conninfo) as aconn:
                await aconn.execute(sql.SQL("LISTEN {}").format(ident(LAYER_CHANGED_INFO)))
                async for _ in aconn.notifies():
                    wake.set()
        except psycopg.Error as exc:
            log.warning("layer-change listener lost its connection: %s", exc)
            await asyncio.sleep(5)
