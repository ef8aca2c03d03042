"""One-box place search: communes and wards, named features, report codes, camera ids, coordinates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pyproj import CRS, Transformer

from analytics import placesearch
from analytics.placesearch import Result
from geo_api.deps import ConnDep, SettingsDep
from geo_api.security import current_user, info_allowed
from layers.auth.users import User
from layers.errors import InvalidInputError
from layers.features import registry, search
from layers.features.crs import vn2000_proj4
from layers.features.placenames import Gazetteer, fold
from layers.reports import store as reports

router = APIRouter(prefix="/api/search", tags=["search"])

COMMUNES = "admin_communes"
# Layers whose own rows are searched another way (communes above, reports by code).
SKIP_LAYERS = frozenset({COMMUNES, "field_reports", "admin_province"})
# Property names that name a feature, in order of preference.
NAME_FIELDS = ("name", "camera_id", "ma_don_vi")
VN2000_SRID = 9208
UserDep = Annotated[User | None, Depends(current_user)]


def _coordinate(text: str) -> Result | None:
    c = placesearch.parse_coordinates(text)
    if c is None:
        return None
    if c.system == "wgs84":
        lon, lat = c.x, c.y
        label = f"{lat:.5f}, {lon:.5f}"
        sub = "WGS 84"
    else:
        to_wgs = Transformer.from_crs(
            CRS.from_proj4(vn2000_proj4(VN2000_SRID)), 4326, always_xy=True
        )
        lon, lat = to_wgs.transform(c.x, c.y)
        label = f"x {c.x:.1f}, y {c.y:.1f}"
        sub = f"VN-2000 (EPSG:{VN2000_SRID}) → {lat:.5f}, {lon:.5f}"
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        return None
    return Result("coordinate", label, 1000, lon, lat, None, sub, extra={"system": c.system})


def _communes(conn: ConnDep, user: User | None, q: str, folded: str) -> list[Result]:
    try:
        info = registry.get_layer(conn, COMMUNES)
    except Exception:
        return []
    if not info_allowed(user, info):
        return []
    units = search.commune_units(conn, info)
    out: list[Result] = []
    by_code = {str(u.properties.get("code")): u for u in units}
    bare = placesearch.strip_prefix(folded)
    for u in units:
        s = max(placesearch.score(folded, u.name), placesearch.score(bare, u.name))
        if s:
            out.append(
                Result(
                    "commune",
                    u.name,
                    s + 10 + placesearch.marks_bonus(q, u.name),
                    u.lon,
                    u.lat,
                    u.bbox,
                    str(u.properties.get("kind") or ""),
                    COMMUNES,
                    u.feature_id,
                    str(u.properties.get("code") or ""),
                )
            )
    # the gazetteer reads "TP Vinh", "thành phố Vinh": the wards that carry a former town's name
    gaz = Gazetteer.from_units(
        [(c, u.name, str(u.properties.get("kind") or "")) for c, u in by_code.items() if u.name]
    )
    text = q if q != q.lower() else q.title()
    m = gaz.match(text)
    if m.status == "matched" and m.code in by_code:
        u = by_code[m.code]
        for r in out:
            if r.code == m.code:
                r.score = max(r.score, 105)
    elif m.status == "ambiguous" and m.mentions and m.mentions[0].prefixed and m.candidates:
        parts = [by_code[c] for c in m.candidates if c in by_code]
        # a city or town (TP, thành phố, TX, thị xã) is made of wards, and the name as typed
        # ("Vinh") is not another one with tones ("Vĩnh"): keep those when any fit
        said = m.mentions[0].text.split()[-1].lower()
        wards = [p for p in parts if str(p.properties.get("kind") or "") == "Phường"]
        spelled = [p for p in wards if said in p.name.lower().split()]
        parts = spelled or wards or parts
        if len(parts) > 1:
            box = placesearch.union_bbox([p.bbox for p in parts])
            names = ", ".join(sorted(p.name for p in parts))
            out.append(
                Result(
                    "place",
                    q.strip(),
                    120,
                    (box[0] + box[2]) / 2,
                    (box[1] + box[3]) / 2,
                    box,
                    names,
                    COMMUNES,
                    extra={"codes": [p.properties.get("code") for p in parts]},
                )
            )
    return out


def _features(
    conn: ConnDep, user: User | None, q: str, folded: str, per_layer: int
) -> list[Result]:
    out: list[Result] = []
    for info in registry.list_layers(conn, with_stats=False):
        if info.slug in SKIP_LAYERS or not info_allowed(user, info):
            continue
        fields = [f for f in NAME_FIELDS if f in registry.property_names(info)]
        for hit in search.find_features(conn, info, fields, folded, per_layer):
            cam = str(hit.properties.get("camera_id") or "")
            kind: placesearch.Kind = "feature"
            label, commune = hit.name, str(hit.properties.get("commune_name") or "")
            if cam and placesearch.score(folded, cam):
                kind, label, commune = "camera", cam, str(hit.properties.get("name") or commune)
            s = placesearch.score(folded, label)
            if not s:
                continue
            out.append(
                Result(
                    kind,
                    label,
                    s + placesearch.marks_bonus(q, label),
                    hit.lon,
                    hit.lat,
                    hit.bbox,
                    commune,
                    info.slug,
                    hit.feature_id,
                    extra={"layer_title_vi": info.title_vi, "layer_title_en": info.title_en},
                )
            )
    return out


def _reports(conn: ConnDep, user: User | None, q: str, limit: int) -> list[Result]:
    m = placesearch.REPORT_CODE.match(q)
    if not m or user is None:
        return []
    hits = search.find_reports(conn, m.group(1), reports.scope(user), limit)
    return [
        Result(
            "report",
            h.code,
            100 if h.code.upper() == m.group(1).upper() else 80,
            h.lon,
            h.lat,
            None,
            h.commune_name,
            "field_reports",
            code=h.code,
            extra={"category": h.category, "status": h.status},
        )
        for h in hits
    ]


@router.get("", summary="Search places, features, report codes and coordinates")
def search_all(
    conn: ConnDep,
    settings: SettingsDep,
    user: UserDep,
    q: Annotated[str, Query(description="What to find: a name, PA-… code, camera id or x, y")],
    limit: Annotated[int, Query(ge=1, le=100, description="Results at most")] = 20,
) -> dict[str, Any]:
    """Results grouped by kind, best first; each obeys the access rules of its layer or report."""
    text = q.strip()
    if not text:
        raise InvalidInputError(
            "q must not be empty", param="q", i18n="err.search.q_must_not_be_empty"
        )
    if len(text) > settings.search_max_query_chars:
        raise InvalidInputError(
            f"q is longer than {settings.search_max_query_chars} characters",
            param="q",
            i18n="err.search.q_longer_than_characters",
            search_max_query_chars=settings.search_max_query_chars,
        )
    folded = fold(text)
    results: list[Result] = []
    coord = _coordinate(text)
    if coord is not None:
        results.append(coord)
    else:
        results += _reports(conn, user, text, limit)
        if len(folded) >= settings.search_min_chars:
            results += _communes(conn, user, text, folded)
            results += _features(conn, user, text, folded, settings.search_per_layer)
    return {"query": text, "groups": placesearch.group(results, limit)}
