"""Item 2 of issue 14: a replace with no valid row fails unless allow_empty; one that keeps
less than the configured share of the rows needs force (409 through the API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_api.cli import app as cli_app
from geo_api.main import create_app
from ingest.pipeline import ImportReport
from layers.errors import ConflictError, InvalidInputError
from layers.settings import Settings

Headers = Callable[..., dict[str, str]]


def _points(path: Path, coords: list[tuple[float, float] | None]) -> Path:
    feats = [
        {
            "type": "Feature",
            "properties": {"name": f"p{i}"},
            "geometry": None if c is None else {"type": "Point", "coordinates": list(c)},
        }
        for i, c in enumerate(coords)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    return path


def _count(engine: Engine, slug: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM feature f JOIN layer l ON l.id = f.layer_id"
                    " WHERE l.slug = :s"
                ),
                {"s": slug},
            ).scalar_one()
        )


VINH = [(105.60 + i * 0.001, 18.65) for i in range(10)]


@pytest.mark.parametrize(
    "bad",
    [
        [None],  # one row without geometry
        [(2.35, 48.85)] * 5,  # five points in Paris
        [],  # an empty FeatureCollection
    ],
)
def test_replace_with_no_valid_row_fails_unless_allow_empty(
    tmp_path: Path,
    engine: Engine,
    do_import: Callable[..., ImportReport],
    bad: list[tuple[float, float] | None],
) -> None:
    slug = f"guard_empty_{len(bad)}_{'n' if bad and bad[0] is None else 'p'}"
    do_import(_points(tmp_path / "good.geojson", VINH), slug)
    path = _points(tmp_path / "bad.geojson", bad)
    with pytest.raises(InvalidInputError, match="allow-empty"):
        do_import(path, slug, mode="replace")
    assert _count(engine, slug) == 10
    if bad:  # one case shows that allow_empty does empty the layer
        return
    rep = do_import(path, slug, mode="replace", allow_empty=True)
    assert rep.deleted == 10 and _count(engine, slug) == 0


def test_cli_replace_with_no_valid_row_exits_non_zero(
    tmp_path: Path, engine: Engine, settings: Settings, do_import: Callable[..., ImportReport]
) -> None:
    do_import(_points(tmp_path / "good.geojson", VINH), "guard_cli")
    bad = _points(tmp_path / "paris.geojson", [(2.35, 48.85)] * 5)
    env = {"IOC_DATABASE_URL": settings.database_url or "", "IOC_STATE_DIR": str(tmp_path)}
    res = CliRunner().invoke(
        cli_app, ["import", str(bad), "--layer", "guard_cli", "--mode", "replace"], env=env
    )
    assert res.exit_code != 0 and "allow-empty" in res.output
    assert _count(engine, "guard_cli") == 10


def test_replace_keeping_few_rows_needs_force(
    tmp_path: Path,
    engine: Engine,
    seeded: Engine,
    settings: Settings,
    do_import: Callable[..., ImportReport],
    auth_headers: Headers,
) -> None:
    do_import(_points(tmp_path / "good.geojson", VINH), "guard_share")
    mostly_out = _points(tmp_path / "few.geojson", VINH[:2] + [(2.35, 48.85)] * 8)
    with pytest.raises(ConflictError, match="force"):
        do_import(mostly_out, "guard_share", mode="replace")
    assert _count(engine, "guard_share") == 10
    with TestClient(create_app(settings)) as c:
        data = {"layer": "guard_share", "mode": "replace", "dry_run": "true"}
        with mostly_out.open("rb") as f:
            res = c.post(
                "/api/imports",
                data=data,
                files={"file": ("few.geojson", f, "application/geo+json")},
                headers=auth_headers("gis_staff"),
            )
        assert res.status_code == 409, res.text
        body = res.json()
        assert body["confirm"] == "force" and body["rows_kept"] == 2 and body["rows_before"] == 10
        with mostly_out.open("rb") as f:
            res = c.post(
                "/api/imports",
                data={**data, "force": "true"},
                files={"file": ("few.geojson", f, "application/geo+json")},
                headers=auth_headers("gis_staff"),
            )
        assert res.status_code == 200 and res.json()["rows_valid"] == 2
    rep = do_import(mostly_out, "guard_share", mode="replace", force=True)
    assert rep.inserted == 2 and _count(engine, "guard_share") == 2


def test_api_replace_keeping_few_rows_answers_409_before_starting_a_job(
    tmp_path: Path,
    engine: Engine,
    seeded: Engine,
    settings: Settings,
    do_import: Callable[..., ImportReport],
    auth_headers: Headers,
) -> None:
    do_import(_points(tmp_path / "good.geojson", VINH), "guard_api")
    mostly_out = _points(tmp_path / "few.geojson", VINH[:2] + [(2.35, 48.85)] * 8)
    empty = _points(tmp_path / "empty.geojson", [])
    with TestClient(create_app(settings)) as c:

        def post(path: Path, **extra: str) -> Any:
            with path.open("rb") as f:
                return c.post(
                    "/api/imports",
                    data={"layer": "guard_api", "mode": "replace", **extra},
                    files={"file": (path.name, f, "application/geo+json")},
                    headers={**auth_headers("gis_staff"), "Accept-Language": "vi"},
                )

        before = c.get("/api/imports?limit=1000", headers=auth_headers("gis_staff")).json()
        res = post(mostly_out)
        assert res.status_code == 409, res.text
        body = res.json()
        assert body["confirm"] == "force" and (body["rows_kept"], body["rows_before"]) == (2, 10)
        assert "chỉ giữ 2 trong 10" in body["detail"] and "guard_api" in body["detail"]
        res = post(empty)
        assert res.status_code == 400 and res.json()["confirm"] == "allow_empty", res.text
        assert "xóa hết 10" in res.json()["detail"]
        # nothing started, nothing changed
        after = c.get("/api/imports?limit=1000", headers=auth_headers("gis_staff")).json()
        assert len(after) == len(before)
        assert _count(engine, "guard_api") == 10
        res = post(mostly_out, force="true")
        assert res.status_code == 202, res.text
        job = c.get(res.json()["href"], headers=auth_headers("gis_staff")).json()
        assert job["status"] == "succeeded", job
    assert _count(engine, "guard_api") == 2
