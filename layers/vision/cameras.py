"""Camera registry: the `cameras` layer's features plus calibration, zones and live state."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, and_, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from layers.demo.specs import CAMERAS
from layers.errors import InvalidInputError, NotFoundError
from layers.features.registry import create_or_update_layer, get_layer, mark_layer_changed
from layers.models import feature
from layers.models.vision import camera_calibration, camera_state, camera_zone

CAMERAS_SLUG = CAMERAS.slug
ZoneKind = Literal["forbidden", "no_parking", "counting_line", "lane", "area"]
CameraStatus = Literal["unknown", "starting", "online", "offline", "stopped", "error"]


class CameraSpec(BaseModel):
    """A camera as registered on the map (one feature of the `cameras` layer)."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    name: str = Field(min_length=1)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    heading_deg: float = Field(default=0.0, ge=0, lt=360)
    fov_deg: float = Field(default=60.0, gt=0, lt=180)
    range_m: float = Field(default=60.0, gt=0)
    mount_height_m: float = Field(default=6.0, gt=0)
    stream_url: str = Field(min_length=1)
    enabled: bool = True
    owner: str = ""
    commune_code: str | None = None


class CameraRecord(CameraSpec):
    """A camera read back, with its live state and last event."""

    model_config = ConfigDict(extra="ignore")

    feature_id: int
    status: str = "unknown"
    detail: str = ""
    last_frame_at: datetime | None = None
    last_event_at: datetime | None = None
    frame_path: str | None = None
    overlay: dict[str, Any] = Field(default_factory=dict)
    calibrated: bool = False


class CalibrationRecord(BaseModel):
    """A camera's fitted image→ground homography and the control points behind it."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str
    ground_crs: str = "local"
    origin_lon: float
    origin_lat: float
    image_width: int = Field(gt=0)
    image_height: int = Field(gt=0)
    control_points: list[dict[str, float]] = Field(min_length=4)
    homography: list[list[float]]
    reprojection_error_m: float = Field(ge=0)
    max_error_m: float = Field(gt=0)


class ZoneSpec(BaseModel):
    """A zone drawn on the map: GeoJSON geometry in WGS84, its kind and rule parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: ZoneKind
    geometry: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)


class ZoneRecord(ZoneSpec):
    """A stored zone."""

    id: int
    camera_id: str


def ensure_cameras_layer(conn: Connection) -> int:
    """Id of the `cameras` layer, creating it from the demo spec if it is missing."""
    try:
        return get_layer(conn, CAMERAS_SLUG).id
    except NotFoundError:
        return create_or_update_layer(conn, CAMERAS)


def _camera_row(conn: Connection, camera_id: str) -> Any:
    layer_id = ensure_cameras_layer(conn)
    return (
        conn.execute(
            select(feature.c.id, feature.c.properties)
            .where(feature.c.layer_id == layer_id)
            .where(feature.c.properties.op("->>")("camera_id") == camera_id)
        )
        .mappings()
        .first()
    )


def upsert_camera(conn: Connection, spec: CameraSpec) -> int:
    """Register or update a camera as a feature of the cameras layer; returns the feature id."""
    layer_id = ensure_cameras_layer(conn)
    props = spec.model_dump(exclude={"lon", "lat"}, exclude_none=True)
    existing = _camera_row(conn, spec.camera_id)
    geom = func.ST_SetSRID(func.ST_MakePoint(spec.lon, spec.lat), 4326)
    if existing is None:
        props.setdefault("status", "unknown")
        fid = int(
            conn.execute(
                feature.insert()
                .values(layer_id=layer_id, geom=geom, properties=props, source_key=spec.camera_id)
                .returning(feature.c.id)
            ).scalar_one()
        )
    else:
        fid = int(existing["id"])
        merged = {**dict(existing["properties"]), **props}
        conn.execute(
            update(feature)
            .where(and_(feature.c.layer_id == layer_id, feature.c.id == fid))
            .values(geom=geom, properties=merged, updated_at=func.now())
        )
    mark_layer_changed(conn, layer_id)
    return fid


_FLOAT_PROPS = ("heading_deg", "fov_deg", "range_m", "mount_height_m")


def _record(row: Any) -> CameraRecord:
    props: dict[str, Any] = dict(row["properties"])
    data: dict[str, Any] = {
        "camera_id": props.get("camera_id"),
        "name": props.get("name") or props.get("camera_id"),
        "lon": row["lon"],
        "lat": row["lat"],
        "stream_url": props.get("stream_url") or "",
        "enabled": bool(props.get("enabled", True)),
        "owner": props.get("owner") or "",
        "commune_code": props.get("commune_code"),
        "feature_id": row["id"],
        "status": row["status"] or props.get("status") or "unknown",
        "detail": row["detail"] or "",
        "last_frame_at": row["last_frame_at"],
        "last_event_at": row["last_event_at"],
        "frame_path": row["frame_path"],
        "overlay": row["overlay"] or {},
        "calibrated": row["calibrated"],
    }
    for key in _FLOAT_PROPS:
        if props.get(key) is not None:
            data[key] = float(props[key])
    return CameraRecord.model_validate(data)


def _camera_select(layer_id: int) -> Any:
    cam_id = feature.c.properties.op("->>")("camera_id")
    return (
        select(
            feature.c.id,
            feature.c.properties,
            func.ST_X(feature.c.geom).label("lon"),
            func.ST_Y(feature.c.geom).label("lat"),
            camera_state.c.status,
            camera_state.c.detail,
            camera_state.c.last_frame_at,
            camera_state.c.last_event_at,
            camera_state.c.frame_path,
            camera_state.c.overlay,
            (camera_calibration.c.camera_id.is_not(None)).label("calibrated"),
        )
        .select_from(
            feature.outerjoin(camera_state, camera_state.c.camera_id == cam_id).outerjoin(
                camera_calibration, camera_calibration.c.camera_id == cam_id
            )
        )
        .where(feature.c.layer_id == layer_id)
        .where(cam_id.is_not(None))
    )


def list_cameras(conn: Connection, enabled_only: bool = False) -> list[CameraRecord]:
    """Every registered camera with its live state, ordered by camera_id."""
    layer_id = ensure_cameras_layer(conn)
    stmt = _camera_select(layer_id).order_by(feature.c.properties.op("->>")("camera_id"))
    cams = [_record(r) for r in conn.execute(stmt).mappings()]
    return [c for c in cams if c.enabled] if enabled_only else cams


def get_camera(conn: Connection, camera_id: str) -> CameraRecord:
    """One camera, or NotFoundError naming it."""
    layer_id = ensure_cameras_layer(conn)
    stmt = _camera_select(layer_id).where(feature.c.properties.op("->>")("camera_id") == camera_id)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(
            f"camera '{camera_id}' does not exist",
            camera_id=camera_id,
            i18n="err.cameras.camera_does_not_exist",
        )
    return _record(row)


def save_calibration(conn: Connection, rec: CalibrationRecord) -> None:
    """Store a camera's calibration, refusing one whose reprojection error is over its limit."""
    get_camera(conn, rec.camera_id)
    if rec.reprojection_error_m > rec.max_error_m:
        raise InvalidInputError(
            f"reprojection error {rec.reprojection_error_m:.2f} m exceeds the allowed "
            f"{rec.max_error_m:.2f} m",
            camera_id=rec.camera_id,
            i18n="err.cameras.reprojection_error_m_exceeds_allowed",
            reprojection_error_m=format(rec.reprojection_error_m, ".2f"),
            max_error_m=format(rec.max_error_m, ".2f"),
        )
    if len(rec.homography) != 3 or any(len(r) != 3 for r in rec.homography):
        raise InvalidInputError(
            "homography must be a 3×3 matrix",
            camera_id=rec.camera_id,
            i18n="err.cameras.homography_must_be_3_3",
        )
    values = rec.model_dump()
    stmt = insert(camera_calibration).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[camera_calibration.c.camera_id],
        set_={
            **{k: stmt.excluded[k] for k in values if k != "camera_id"},
            "updated_at": func.now(),
        },
    )
    conn.execute(stmt)


def get_calibration(conn: Connection, camera_id: str) -> CalibrationRecord | None:
    """A camera's stored calibration, or None when it has none yet."""
    row = (
        conn.execute(select(camera_calibration).where(camera_calibration.c.camera_id == camera_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return CalibrationRecord.model_validate({k: v for k, v in row.items() if k != "updated_at"})


def add_zone(conn: Connection, camera_id: str, spec: ZoneSpec) -> int:
    """Store a zone of a camera (geometry as GeoJSON in WGS84); returns its id."""
    get_camera(conn, camera_id)
    gtype = spec.geometry.get("type")
    if spec.kind == "counting_line" and gtype != "LineString":
        raise InvalidInputError(
            "a counting_line zone must be a LineString",
            kind=spec.kind,
            i18n="err.cameras.counting_line_zone_must_be",
        )
    if spec.kind != "counting_line" and gtype not in ("Polygon", "MultiPolygon"):
        raise InvalidInputError(
            f"a {spec.kind} zone must be a Polygon",
            kind=spec.kind,
            i18n="err.cameras.zone_must_be_polygon",
        )
    geom = func.ST_SetSRID(func.ST_GeomFromGeoJSON(json.dumps(spec.geometry)), 4326)
    valid = conn.execute(select(func.ST_IsValid(geom))).scalar()
    if not valid:
        raise InvalidInputError(
            "zone geometry is not valid", kind=spec.kind, i18n="err.cameras.zone_geometry_not_valid"
        )
    return int(
        conn.execute(
            camera_zone.insert()
            .values(
                camera_id=camera_id, name=spec.name, kind=spec.kind, geom=geom, params=spec.params
            )
            .returning(camera_zone.c.id)
        ).scalar_one()
    )


def list_zones(conn: Connection, camera_id: str) -> list[ZoneRecord]:
    """A camera's zones, GeoJSON geometry in WGS84, by id."""
    stmt = (
        select(
            camera_zone.c.id,
            camera_zone.c.camera_id,
            camera_zone.c.name,
            camera_zone.c.kind,
            camera_zone.c.params,
            func.ST_AsGeoJSON(camera_zone.c.geom, 9).cast(JSONB).label("geometry"),
        )
        .where(camera_zone.c.camera_id == camera_id)
        .order_by(camera_zone.c.id)
    )
    return [ZoneRecord.model_validate(dict(r)) for r in conn.execute(stmt).mappings()]


def delete_zones(conn: Connection, camera_id: str) -> int:
    """Remove all zones of a camera; returns how many."""
    return int(
        conn.execute(camera_zone.delete().where(camera_zone.c.camera_id == camera_id)).rowcount
    )


def set_state(
    conn: Connection,
    camera_id: str,
    *,
    status: CameraStatus | None = None,
    detail: str | None = None,
    last_frame_at: datetime | None = None,
    last_event_at: datetime | None = None,
    frame_path: str | None = None,
    overlay: dict[str, Any] | None = None,
    worker_pid: int | None = None,
) -> None:
    """Upsert a camera's live state; a status change is also written to its map feature."""
    values: dict[str, Any] = {
        k: v
        for k, v in {
            "status": status,
            "detail": detail,
            "last_frame_at": last_frame_at,
            "last_event_at": last_event_at,
            "frame_path": frame_path,
            "overlay": overlay,
            "worker_pid": worker_pid,
        }.items()
        if v is not None
    }
    previous = conn.execute(
        select(camera_state.c.status).where(camera_state.c.camera_id == camera_id)
    ).scalar()
    stmt = insert(camera_state).values(camera_id=camera_id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[camera_state.c.camera_id],
        set_={**{k: stmt.excluded[k] for k in values}, "updated_at": func.now()},
    )
    conn.execute(stmt)
    if status is not None and status != previous:
        _write_feature_status(conn, camera_id, status)


def _write_feature_status(conn: Connection, camera_id: str, status: str) -> None:
    layer_id = ensure_cameras_layer(conn)
    res = conn.execute(
        update(feature)
        .where(feature.c.layer_id == layer_id)
        .where(feature.c.properties.op("->>")("camera_id") == camera_id)
        .values(
            properties=feature.c.properties.op("||")(literal({"status": status}, JSONB)),
            updated_at=func.now(),
        )
    )
    if res.rowcount:
        mark_layer_changed(conn, layer_id)
