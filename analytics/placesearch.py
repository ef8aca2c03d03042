"""Pure parts of the one-box place search: reading coordinates, scoring names, ordering results.

The storage lookups are in `layers.features.search`; the route (`GET /api/search`) composes both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from layers.features.placenames import PREFIXES, fold

Kind = Literal["coordinate", "place", "commune", "feature", "report", "camera"]

# Order of the groups in the answer: what a person most likely meant first.
KIND_ORDER: dict[str, int] = {
    "coordinate": 0,
    "place": 1,
    "commune": 2,
    "report": 3,
    "camera": 4,
    "feature": 5,
}

_NUM = r"[-+]?\d+(?:[.,]\d+)?"
_PAIR = re.compile(rf"^\s*({_NUM})\s*[,;\s]\s*({_NUM})\s*$")
_PAIR_DOT = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*[,;\s]\s*([-+]?\d+(?:\.\d+)?)\s*$")
REPORT_CODE = re.compile(r"^\s*(pa-[\w-]*)\s*$", re.IGNORECASE)

# Rough VN-2000 TM-3 ranges over Nghệ An (metres): easting around 500 km ± 300, northing ~2 Mm.
_EASTING = (100_000.0, 900_000.0)
_NORTHING = (1_000_000.0, 3_000_000.0)


@dataclass(frozen=True)
class Coordinate:
    """A coordinate typed in the box: WGS84 degrees, or VN-2000 metres (easting, northing)."""

    system: Literal["wgs84", "vn2000"]
    x: float
    y: float


def parse_coordinates(text: str) -> Coordinate | None:
    """ "18.81, 105.72" (lat, lon; lon, lat also read), or VN-2000 "x, y" metres; else None."""
    m = _PAIR_DOT.match(text) or _PAIR.match(text)
    if not m:
        return None
    try:
        a, b = (float(g.replace(",", ".")) for g in m.groups())
    except ValueError:
        return None
    if abs(a) <= 180 and abs(b) <= 180:
        # Coordinate(x=lon, y=lat); Vietnam's longitudes (102-110) exceed 90, so either order reads
        if abs(b) > 90 >= abs(a):
            return Coordinate("wgs84", b, a)
        if abs(a) > 90 >= abs(b):
            return Coordinate("wgs84", a, b)
        return Coordinate("wgs84", b, a) if abs(a) <= 90 else None
    if abs(a) > 180 or abs(b) > 180:
        if _EASTING[0] <= a <= _EASTING[1] and _NORTHING[0] <= b <= _NORTHING[1]:
            return Coordinate("vn2000", a, b)
        if _EASTING[0] <= b <= _EASTING[1] and _NORTHING[0] <= a <= _NORTHING[1]:
            # surveyors often write X = northing first
            return Coordinate("vn2000", b, a)
    return None


def strip_prefix(folded: str) -> str:
    """The folded query without a leading administrative prefix ("tp vinh" -> "vinh")."""
    words = folded.replace(".", " ").split()
    for n in (2, 1):
        if len(words) > n and tuple(words[:n]) in PREFIXES:
            return " ".join(words[n:])
    return " ".join(words)


def score(query_folded: str, name: str) -> int:
    """How well a name fits the folded query: 100 equal, 80 prefix, 60 word start, 40 inside."""
    target = " ".join(_words(fold(name)))
    q = " ".join(_words(query_folded))
    if not q or not target:
        return 0
    if target == q:
        return 100
    if target.startswith(q):
        return 80
    if f" {q}" in f" {target}":
        return 60
    if q in target:
        return 40
    return 0


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def marks_bonus(query: str, name: str) -> int:
    """A small bonus when the query's own marks appear as written in the name (Vinh vs Vĩnh)."""
    q = query.strip().lower()
    return 5 if q and q != fold(q) and q in name.lower() else 0


@dataclass
class Result:
    """One search result, as the page shows and flies to it."""

    kind: Kind
    label: str
    score: int
    lon: float
    lat: float
    bbox: tuple[float, float, float, float] | None = None
    sublabel: str = ""
    layer: str | None = None
    feature_id: int | None = None
    code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def doc(self) -> dict[str, Any]:
        """JSON form."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "label": self.label,
            "sublabel": self.sublabel,
            "score": self.score,
            "lon": round(self.lon, 7),
            "lat": round(self.lat, 7),
            "bbox": [round(v, 7) for v in self.bbox] if self.bbox else None,
            "layer": self.layer,
            "feature_id": self.feature_id,
            "code": self.code,
        }
        out.update(self.extra)
        return out


def group(results: list[Result], limit: int) -> list[dict[str, Any]]:
    """Results grouped by kind (groups in KIND_ORDER), best first, `limit` in all."""
    ranked = sorted(results, key=lambda r: (-r.score, KIND_ORDER[r.kind], r.label))[:limit]
    groups: dict[str, list[Result]] = {}
    for r in ranked:
        groups.setdefault(r.kind, []).append(r)
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0].score, KIND_ORDER[kv[0]]))
    return [{"kind": k, "results": [r.doc() for r in rs]} for k, rs in ordered]


def union_bbox(boxes: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    """The bbox holding all the boxes."""
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )
