"""CRS of an import: read from the file (incl. ESRI VN-2000 WKT), given, or detected; transforms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from layers.errors import InvalidInputError
from layers.features.crs import (
    VN2000_TM3_SRIDS,
    towgs84_clause,
    vn2000_candidate_srids,
    vn2000_proj4,
)

WGS84 = 4326
VN2000_GEOGRAPHIC = 4756
CrsSource = Literal["file", "option", "detected"]


@dataclass
class CrsChoice:
    """The CRS an import uses, where it came from, and the alternatives that also fitted."""

    srid: int | None
    name: str
    source: CrsSource
    proj: str  # what pyproj builds the transformer from
    alternatives: list[int] = field(default_factory=list)
    inside_fraction: float | None = None
    swap_axes: bool = False
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """JSON-friendly form for reports."""
        return {
            "srid": self.srid,
            "name": self.name,
            "source": self.source,
            "alternatives": [{"srid": s, "name": crs_name(s)} for s in self.alternatives],
            "inside_fraction": self.inside_fraction,
            "swap_axes": self.swap_axes,
            "notes": self.notes,
        }


@lru_cache(maxsize=64)
def crs_name(srid: int) -> str:
    """EPSG's name of a CRS."""
    return str(CRS.from_epsg(srid).name)


def proj_for_srid(srid: int) -> str:
    """What to build a transformer from: VN-2000 codes carry the official shift (EPSG:6960)."""
    if srid in vn2000_candidate_srids():
        return vn2000_proj4(srid)
    if srid == VN2000_GEOGRAPHIC:
        return f"+proj=longlat +ellps=WGS84 {towgs84_clause()} +no_defs"
    return f"EPSG:{srid}"


def _is_vn2000(crs: CRS) -> bool:
    names = " ".join(
        str(x)
        for x in (
            crs.name,
            crs.datum.name if crs.datum else "",
            crs.geodetic_crs.name if crs.geodetic_crs else "",
        )
    ).lower()
    return bool(re.search(r"vn[-_ ]?2000|vietnam[-_ ]?2000", names))


def _tm_params(crs: CRS) -> tuple[float, float, float, float] | None:
    """(lon_0, k, x_0, y_0) of a Transverse Mercator CRS."""
    op = crs.coordinate_operation
    if op is None or "transverse mercator" not in op.method_name.lower():
        return None
    values: dict[str, float] = {}
    for p in op.params:
        key = p.name.lower()
        if "longitude" in key or "central meridian" in key:
            values["lon_0"] = float(p.value)
        elif "scale" in key:
            values["k"] = float(p.value)
        elif "easting" in key:
            values["x_0"] = float(p.value)
        elif "northing" in key:
            values["y_0"] = float(p.value)
    if len(values) < 4:
        return None
    return values["lon_0"], values["k"], values["x_0"], values["y_0"]


def _rounded(p: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (round(p[0], 6), round(p[1], 6), round(p[2], 6), round(p[3], 6))


@lru_cache(maxsize=1)
def _vn2000_params() -> dict[tuple[float, float, float, float], int]:
    out: dict[tuple[float, float, float, float], int] = {}
    # Newer TM-3 codes first so they win over the legacy duplicates.
    for srid in (*VN2000_TM3_SRIDS, *vn2000_candidate_srids()):
        params = _tm_params(CRS.from_epsg(srid))
        if params is not None:
            out.setdefault(_rounded(params), srid)
    return out


def recognise(crs_text: str, source: CrsSource) -> CrsChoice:
    """Turn a CRS from the file or --crs into a choice; VN-2000 always gets the official shift."""
    try:
        crs = CRS.from_user_input(crs_text)
    except CRSError as exc:
        raise InvalidInputError(
            f"CRS not understood: {crs_text[:80]!r} ({exc})",
            i18n="err.crs.crs_not_understood",
            crs_text=crs_text[:80],
            exc=str(exc),
        ) from exc
    epsg = crs.to_epsg(min_confidence=70)
    if epsg is not None and (epsg in vn2000_candidate_srids() or epsg == VN2000_GEOGRAPHIC):
        return CrsChoice(epsg, crs_name(epsg), source, proj_for_srid(epsg))
    if _is_vn2000(crs):
        if crs.is_geographic:
            return CrsChoice(
                VN2000_GEOGRAPHIC,
                crs_name(VN2000_GEOGRAPHIC),
                source,
                proj_for_srid(VN2000_GEOGRAPHIC),
                notes=["VN-2000 geographic; official shift EPSG:6960 applied"],
            )
        params = _tm_params(crs)
        if params is not None:
            srid = _vn2000_params().get(_rounded(params))
            if srid is not None:
                return CrsChoice(
                    srid,
                    crs_name(srid),
                    source,
                    proj_for_srid(srid),
                    notes=[
                        f"VN-2000 WKT ('{crs.name}') matched EPSG:{srid}; "
                        "official shift EPSG:6960 applied"
                    ],
                )
            lon_0, k, x_0, y_0 = params
            proj = (
                f"+proj=tmerc +lat_0=0 +lon_0={lon_0} +k={k} +x_0={x_0} +y_0={y_0} "
                f"+ellps=WGS84 {towgs84_clause()} +units=m +no_defs"
            )
            return CrsChoice(
                None,
                f"VN-2000 TM (lon_0={lon_0}, k={k})",
                source,
                proj,
                notes=["VN-2000 zone with no EPSG code; official shift EPSG:6960 applied"],
            )
    if epsg is not None:
        return CrsChoice(epsg, crs_name(epsg), source, f"EPSG:{epsg}")
    return CrsChoice(None, str(crs.name), source, crs.to_wkt())


@lru_cache(maxsize=64)
def transformer_to_wgs84(proj: str) -> Transformer:
    """A transformer from `proj` to WGS84 lon/lat."""
    return Transformer.from_crs(CRS.from_user_input(proj), CRS.from_epsg(WGS84), always_xy=True)


def candidates() -> list[int]:
    """SRIDs the detector tries, WGS84 first."""
    return [WGS84, *vn2000_candidate_srids()]


def _transform_xy(proj: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if proj == f"EPSG:{WGS84}":
        return x, y
    lon, lat = transformer_to_wgs84(proj).transform(x, y, errcheck=False)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def inside_fraction(proj: str, x: np.ndarray, y: np.ndarray, province: shapely.Geometry) -> float:
    """Share of the sample points that land inside the province in CRS `proj`."""
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return 0.0
    try:
        lon, lat = _transform_xy(proj, x[finite], y[finite])
    except Exception:
        return 0.0
    ok = np.isfinite(lon) & np.isfinite(lat)
    inside = np.zeros(len(lon), dtype=bool)
    shapely.prepare(province)
    inside[ok] = shapely.contains_xy(province, lon[ok], lat[ok])
    return float(inside.mean())


def detect(
    sample_x: np.ndarray,
    sample_y: np.ndarray,
    province: shapely.Geometry,
    official_srid: int,
    allow_swap: bool = False,
) -> CrsChoice:
    """Pick the candidate CRS that puts the sample points inside the (tolerant) province.

    Several TM-3 meridians fit a province (each shift is ~26 km), so the province's
    official meridian wins when it fits, and the others are reported as alternatives.
    """
    finite = np.isfinite(sample_x) & np.isfinite(sample_y)
    x, y = sample_x[finite], sample_y[finite]
    if len(x) == 0:
        raise InvalidInputError(
            "cannot detect the CRS: no coordinates in the file",
            i18n="err.crs.cannot_detect_crs_no_coordinates",
        )
    scores: dict[tuple[int, bool], float] = {}
    geographic = bool(np.all((np.abs(x) <= 180) & (np.abs(y) <= 90)))
    shapely.prepare(province)
    orders = [False, True] if allow_swap else [False]
    for swap in orders:
        xx, yy = (y, x) if swap else (x, y)
        for srid in candidates():
            if srid == WGS84 and not geographic:
                continue
            if srid != WGS84 and geographic:
                continue
            lon, lat = _transform_xy(proj_for_srid(srid), xx, yy)
            ok = np.isfinite(lon) & np.isfinite(lat)
            inside = np.zeros(len(lon), dtype=bool)
            inside[ok] = shapely.contains_xy(province, lon[ok], lat[ok])
            scores[(srid, swap)] = float(inside.mean())
        if any(v >= 0.5 for v in scores.values()):
            break
    best = max(scores.values()) if scores else 0.0
    if best < 0.5:
        raise InvalidInputError(
            "cannot detect the CRS: no candidate (WGS84, VN-2000 UTM 48N/49N, VN-2000 TM-3 "
            "zones) puts the data inside the province; pass --crs EPSG:NNNN",
            i18n="err.crs.cannot_detect_crs_no_candidate",
        )
    fits = [key for key, v in scores.items() if v >= max(0.5, best * 0.9)]
    official = next((k for k in fits if k[0] == official_srid), None)
    chosen = official or sorted(fits, key=lambda k: (-scores[k], candidates().index(k[0])))[0]
    alternatives = [k[0] for k in fits if k != chosen]
    notes = []
    if alternatives:
        why = "the province's official meridian" if official else "the best fit"
        notes.append(
            f"{len(fits)} candidate systems put the data inside the province; chose "
            f"EPSG:{chosen[0]} ({why}); alternatives: "
            + ", ".join(f"EPSG:{s}" for s in alternatives)
        )
    if chosen[1]:
        notes.append("x/y columns were swapped (surveyors' X is northing)")
    return CrsChoice(
        chosen[0],
        crs_name(chosen[0]),
        "detected",
        proj_for_srid(chosen[0]),
        alternatives=alternatives,
        inside_fraction=scores[chosen],
        swap_axes=chosen[1],
        notes=notes,
    )


def _bilinear(
    x: np.ndarray,
    y: np.ndarray,
    x0: float,
    y0: float,
    h: float,
    grid_lon: np.ndarray,
    grid_lat: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    fx = (x - x0) / h
    fy = (y - y0) / h
    nx = grid_lon.shape[1] - 1
    ny = grid_lon.shape[0] - 1
    ix = np.clip(np.floor(fx).astype(np.int64), 0, nx - 1)
    iy = np.clip(np.floor(fy).astype(np.int64), 0, ny - 1)
    tx = fx - ix
    ty = fy - iy
    out = []
    for grid in (grid_lon, grid_lat):
        v00 = grid[iy, ix]
        v01 = grid[iy, ix + 1]
        v10 = grid[iy + 1, ix]
        v11 = grid[iy + 1, ix + 1]
        out.append(
            v00 * (1 - tx) * (1 - ty) + v01 * tx * (1 - ty) + v10 * (1 - tx) * ty + v11 * tx * ty
        )
    return out[0], out[1]


@dataclass(frozen=True)
class _Poly:
    """A 2-D polynomial fit of lon/lat over the data's extent, in normalised coordinates."""

    mx: float
    sx: float
    my: float
    sy: float
    deg: int
    lon0: float
    lat0: float
    c_lon: dict[tuple[int, int], float]
    c_lat: dict[tuple[int, int], float]

    def __call__(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        lon = np.empty(n, dtype=np.float64)
        lat = np.empty(n, dtype=np.float64)
        # Blocks that fit in the CPU cache: Horner's temporaries never leave it, and two
        # threads share the work (numpy releases the GIL).
        block = 32_768
        starts = range(0, n, block)
        if n >= 4 * block:
            from layers.ingest.parallel import run_pair

            half = (len(starts) // 2) * block
            run_pair(
                lambda: self._eval_blocks(x, y, lon, lat, 0, half, block),
                lambda: self._eval_blocks(x, y, lon, lat, half, n, block),
            )
        else:
            self._eval_blocks(x, y, lon, lat, 0, n, block)
        return lon, lat

    def _eval_blocks(
        self,
        x: np.ndarray,
        y: np.ndarray,
        lon: np.ndarray,
        lat: np.ndarray,
        start: int,
        stop: int,
        block: int,
    ) -> None:
        for a in range(start, stop, block):
            b = min(stop, a + block)
            u = (x[a:b] - self.mx) / self.sx
            v = (y[a:b] - self.my) / self.sy
            self._horner(u, v, self.c_lon, self.lon0, lon[a:b])
            self._horner(u, v, self.c_lat, self.lat0, lat[a:b])

    def _horner(
        self,
        u: np.ndarray,
        v: np.ndarray,
        coef: dict[tuple[int, int], float],
        base: float,
        out: np.ndarray,
    ) -> None:
        p = np.empty_like(u)
        out.fill(0.0)
        for i in range(self.deg, -1, -1):
            p.fill(coef[(i, self.deg - i)])
            for j in range(self.deg - i - 1, -1, -1):
                p *= v
                p += coef[(i, j)]
            out *= u
            out += p
        out += base


def _fit_poly(proj: str, xmin: float, xmax: float, ymin: float, ymax: float, deg: int) -> _Poly:
    """Least-squares fit of PROJ's exact results on a 40 x 40 grid over the extent."""
    mesh_x, mesh_y = np.meshgrid(np.linspace(xmin, xmax, 40), np.linspace(ymin, ymax, 40))
    gx, gy = mesh_x.ravel(), mesh_y.ravel()
    lon, lat = _transform_xy(proj, gx, gy)
    mx, sx = (xmin + xmax) / 2, max((xmax - xmin) / 2, 1.0)
    my, sy = (ymin + ymax) / 2, max((ymax - ymin) / 2, 1.0)
    u, v = (gx - mx) / sx, (gy - my) / sy
    terms = [(i, j) for i in range(deg + 1) for j in range(deg + 1 - i)]
    design = np.column_stack([u**i * v**j for i, j in terms])
    lon0, lat0 = float(lon.mean()), float(lat.mean())
    # Normal equations summed with einsum: no BLAS call, whose thread pool spins against
    # ours on a busy two-core machine (lstsq took 0.1 s here); the 1 mm check guards accuracy.
    gram = np.einsum("ki,kj->ij", design, design)
    c_lon = np.linalg.solve(gram, np.einsum("ki,k->i", design, lon - lon0))
    c_lat = np.linalg.solve(gram, np.einsum("ki,k->i", design, lat - lat0))
    return _Poly(
        mx, sx, my, sy, deg, lon0, lat0,
        {t: float(c_lon[k]) for k, t in enumerate(terms)},
        {t: float(c_lat[k]) for k, t in enumerate(terms)},
    )  # fmt: skip


def _error_m(lon: np.ndarray, lat: np.ndarray, ex_lon: np.ndarray, ex_lat: np.ndarray) -> float:
    err = np.hypot(
        (lon - ex_lon) * 111_320.0 * np.cos(np.radians(ex_lat)), (lat - ex_lat) * 110_574.0
    )
    return float(err.max()) if np.all(np.isfinite(err)) else float("inf")


GRID_MIN_COORDS = 200_000
GRID_MAX_ERROR_M = 0.001


def transform_coords(proj: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates to WGS84 lon/lat.

    Large projected inputs use a polynomial fitted to PROJ's exact results over the data's
    extent (or else an exact PROJ grid with bilinear interpolation), each accepted only if
    2,000 check points and the extent's corners agree with PROJ to within 1 mm; otherwise
    every coordinate goes through PROJ. The mapping is smooth, so this is safe and faster.
    """
    if proj == f"EPSG:{WGS84}":
        return x, y
    n = len(x)
    crs = CRS.from_user_input(proj)
    if n < GRID_MIN_COORDS or not crs.is_projected:
        return _transform_xy(proj, x, y)
    xmin, xmax, ymin, ymax = float(x.min()), float(x.max()), float(y.min()), float(y.max())
    extent = max(xmax - xmin, ymax - ymin, 1.0)
    h = float(np.clip(extent / np.sqrt(n / 16.0), 25.0, 1000.0))
    rng = np.random.default_rng(0)
    check = rng.integers(0, n, size=min(n, 2000))
    ex_lon, ex_lat = _transform_xy(proj, x[check], y[check])
    cx = np.array([xmin, xmin, xmax, xmax])
    cy = np.array([ymin, ymax, ymin, ymax])
    corner_lon, corner_lat = _transform_xy(proj, cx, cy)
    for deg in (4, 5, 6):
        poly = _fit_poly(proj, xmin, xmax, ymin, ymax, deg)
        lon, lat = poly(x[check], y[check])
        clon, clat = poly(cx, cy)
        if (
            _error_m(lon, lat, ex_lon, ex_lat) <= GRID_MAX_ERROR_M
            and _error_m(clon, clat, corner_lon, corner_lat) <= GRID_MAX_ERROR_M
        ):
            return poly(x, y)
    for _ in range(4):
        gx = xmin + h * np.arange(int(np.ceil((xmax - xmin) / h)) + 2)
        gy = ymin + h * np.arange(int(np.ceil((ymax - ymin) / h)) + 2)
        if len(gx) * len(gy) > n // 2:
            break
        mx, my = np.meshgrid(gx, gy)
        glon, glat = _transform_xy(proj, mx.ravel(), my.ravel())
        glon = glon.reshape(mx.shape)
        glat = glat.reshape(mx.shape)
        lon, lat = _bilinear(x[check], y[check], xmin, ymin, h, glon, glat)
        err_m = np.hypot(
            (lon - ex_lon) * 111_320.0 * np.cos(np.radians(ex_lat)), (lat - ex_lat) * 110_574.0
        )
        if np.all(np.isfinite(err_m)) and float(err_m.max()) <= GRID_MAX_ERROR_M:
            return _bilinear(x, y, xmin, ymin, h, glon, glat)
        h /= 2.0
    return _transform_xy(proj, x, y)


def transform_geometries(geoms: np.ndarray, proj: str, swap_axes: bool = False) -> np.ndarray:
    """Shapely geometries (source CRS) to WGS84, vectorised over all coordinates."""
    if proj == f"EPSG:{WGS84}" and not swap_axes:
        return geoms
    coords = shapely.get_coordinates(geoms)
    if len(coords) == 0:
        return geoms
    x, y = coords[:, 0], coords[:, 1]
    if swap_axes:
        x, y = y, x
    lon, lat = transform_coords(proj, np.ascontiguousarray(x), np.ascontiguousarray(y))
    out = np.array(geoms, copy=True)
    return np.asarray(shapely.set_coordinates(out, np.column_stack([lon, lat])), dtype=object)
