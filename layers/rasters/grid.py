"""A north-up raster grid in WebMercator: the array every raster read returns."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_R = 6378137.0


@dataclass(frozen=True)
class Grid:
    """A north-up grid in WebMercator: values, their bounds, and nodata."""

    values: npt.NDArray[Any]
    bounds: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax (metres, EPSG:3857)
    nodata: float | None

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return int(self.values.shape[0]), int(self.values.shape[1])

    @property
    def res(self) -> tuple[float, float]:
        """Cell width and height in projected metres."""
        xmin, ymin, xmax, ymax = self.bounds
        return (xmax - xmin) / self.shape[1], (ymax - ymin) / self.shape[0]

    def valid(self) -> npt.NDArray[np.bool_]:
        """True where a value is present (computed once per grid: values are not changed
        after a grid is made)."""
        return self._valid

    @cached_property
    def _valid(self) -> npt.NDArray[np.bool_]:
        ok = np.ones(self.values.shape, bool)
        if self.nodata is not None:
            ok &= self.values != self.nodata
        if self.values.dtype.kind == "f":
            ok &= np.isfinite(self.values)
        return ok

    def row_area_m2(self) -> npt.NDArray[np.float64]:
        """Ground area (m², WGS84 ellipsoid) of one cell per row."""
        rows = self.shape[0]
        xmin, ymin, xmax, ymax = self.bounds
        dx, dy = self.res
        y = ymax - (np.arange(rows) + 0.5) * dy
        lat = np.arctan(np.sinh(y / EARTH_R))
        # EPSG:3857 puts geodetic latitudes through the spherical formula; the ground area of
        # a cell on the WGS84 ellipsoid is then M·N/a² · cos²φ times its projected area.
        e2 = 0.00669437999014
        ellipsoid = (1 - e2) / (1 - e2 * np.sin(lat) ** 2) ** 2
        area: npt.NDArray[np.float64] = dx * dy * np.cos(lat) ** 2 * ellipsoid
        return area

    def row_lat(self) -> npt.NDArray[np.float64]:
        """Latitude (degrees) of each row's centre."""
        ymax = self.bounds[3]
        y = ymax - (np.arange(self.shape[0]) + 0.5) * self.res[1]
        lat: npt.NDArray[np.float64] = np.degrees(np.arctan(np.sinh(y / EARTH_R)))
        return lat
