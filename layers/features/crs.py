"""VN-2000 reference systems: the official datum shift and the TM-3/UTM zones IOC Map knows."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

from pyproj import CRS

# EPSG:6960 (Decision 05/2007/QĐ-BTNMT), VN-2000 -> WGS 84. EPSG publishes it in the
# coordinate-frame convention; PROJ's +towgs84 uses position-vector, so rotations flip sign.
VN2000_TOWGS84 = (
    -191.90441429,
    -39.30318279,
    -111.45032835,
    0.00928836,
    -0.01975479,
    0.00427372,
    0.252906278,
)
VN2000_TM3_SRIDS = tuple(range(9205, 9219))
VN2000_TM3_LEGACY_SRIDS = (5896, 5897, 5898, 5899)
VN2000_UTM_SRIDS = (3405, 3406)


@dataclass(frozen=True)
class SpatialRefRow:
    """One row for PostGIS's spatial_ref_sys."""

    srid: int
    auth_name: str
    auth_srid: int
    srtext: str
    proj4text: str


def towgs84_clause() -> str:
    """The +towgs84 clause of the official VN-2000 shift."""
    return "+towgs84=" + ",".join(repr(v) for v in VN2000_TOWGS84)


@lru_cache(maxsize=64)
def vn2000_proj4(srid: int) -> str:
    """PROJ.4 string of a VN-2000 projected CRS, with the official 7-parameter shift."""
    with warnings.catch_warnings():
        # PROJ.4 strings lose the datum name; we add the shift ourselves, which is the point.
        warnings.simplefilter("ignore", UserWarning)
        base = CRS.from_epsg(srid).to_proj4().replace(" +type=crs", "")
    parts = [p for p in base.split() if not p.startswith("+towgs84") and p != "+no_defs"]
    return " ".join([*parts, towgs84_clause(), "+no_defs"])


def vn2000_spatial_ref_row(srid: int) -> SpatialRefRow:
    """spatial_ref_sys row for a VN-2000 zone, named as EPSG names it."""
    crs = CRS.from_epsg(srid)
    bound = CRS.from_proj4(vn2000_proj4(srid))
    wkt = bound.to_wkt("WKT1_GDAL")
    # Keep EPSG's human name in the WKT so clients (QGIS) show "VN-2000 / TM-3 104-45".
    wkt = wkt.replace('PROJCS["unknown"', f'PROJCS["{crs.name}"', 1)
    wkt = wkt.replace('GEOGCS["unknown"', 'GEOGCS["VN-2000"', 1)
    return SpatialRefRow(srid, "EPSG", srid, wkt, vn2000_proj4(srid))


def vn2000_candidate_srids() -> tuple[int, ...]:
    """All VN-2000 projected systems the CRS detector tries."""
    return VN2000_UTM_SRIDS + VN2000_TM3_LEGACY_SRIDS + VN2000_TM3_SRIDS
