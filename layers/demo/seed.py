"""`iocmap seed demo`: load boundaries and synthetic layers; a second run changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.dialects.postgresql import insert

from layers.auth.users import seed_demo_users
from layers.demo import specs, synthetic
from layers.demo.boundaries import Ward, load_province, load_wards
from layers.features.bulk import FeatureRow, UpsertCounts, upsert_features
from layers.features.registry import LayerSpec, create_or_update_layer
from layers.incidents import store as incident_store
from layers.ingest.batches import create_batch, delete_batch, finish_batch
from layers.models import admin_unit, feature
from layers.settings import Settings

REFORM_DATE = date(2025, 7, 1)
SAMPLE_VIDEO = (
    Path(__file__).resolve().parent.parent.parent
    / "vision"
    / "data"
    / "video"
    / "street-640x352.mp4"
)


@dataclass
class SeedReport:
    """What a seed run did, per layer."""

    layers: dict[str, UpsertCounts] = field(default_factory=dict)
    admin_units_changed: int = 0
    new_user_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True if anything was written."""
        return (
            self.admin_units_changed > 0
            or bool(self.new_user_passwords)
            or any(c.changed for c in self.layers.values())
        )

    def summary(self) -> str:
        """One line per layer, for the CLI."""
        lines = [f"admin units changed: {self.admin_units_changed}"]
        for slug, c in self.layers.items():
            lines.append(
                f"{slug:16s} inserted {c.inserted:7d}  updated {c.updated:7d}  unchanged {c.unchanged:7d}"
            )
        return "\n".join(lines)


def seed_demo(
    engine: Engine, settings: Settings, progress: Callable[[str], None] | None = None
) -> SeedReport:
    """Seed the Nghệ An demo into a migrated database, in one transaction."""
    say = progress or (lambda _msg: None)
    wards = list(load_wards())
    report = SeedReport()
    with engine.begin() as conn:
        batch_id = create_batch(
            conn,
            layer_id=None,
            source="iocmap seed demo",
            actor="iocmap",
            mode="upsert",
            kind="seed",
        )
        report.admin_units_changed = _seed_admin_units(conn, wards)
        say(f"admin units: {report.admin_units_changed} changed")

        def load(
            spec: LayerSpec, rows: Sequence[synthetic.SyntheticFeature], owns_layer: bool = True
        ) -> None:
            layer_id = create_or_update_layer(conn, spec)
            counts = upsert_features(
                conn,
                layer_id,
                (FeatureRow(r.source_key, r.geometry, r.properties, r.observed_at) for r in rows),
                batch_id=batch_id,
                delete_missing=owns_layer,
            )
            report.layers[spec.slug] = counts
            say(
                f"{spec.slug}: {len(rows)} features ({counts.inserted} new, {counts.updated} updated)"
            )

        load(specs.ADMIN_PROVINCE, [_province_feature()])
        load(specs.ADMIN_COMMUNES, [_ward_feature(w) for w in wards])
        load(specs.HOSPITALS, synthetic.hospitals(wards))
        load(specs.SCHOOLS, synthetic.schools(wards))
        load(specs.TOURISM, synthetic.tourism_sites(wards))
        load(specs.CAMERAS, synthetic.cameras(wards, SAMPLE_VIDEO.as_uri()))
        load(specs.AGENCIES, synthetic.agencies(wards))
        incident_store.seed_sops(conn)  # issue 21: the Vietnamese SOPs, once
        # news_items is filled by the news connector (iocmap seed runs it); only the layer here.
        create_or_update_layer(conn, specs.NEWS_ITEMS)
        reports_layer = create_or_update_layer(conn, specs.FIELD_REPORTS)
        load(
            specs.FIELD_REPORTS, synthetic.field_reports(wards, _report_anchor(conn, reports_layer))
        )
        say(f"generating {settings.demo_parcels} land parcels…")
        load(specs.LAND_PARCELS, synthetic.land_parcels(wards, settings.demo_parcels))

        report.new_user_passwords = seed_demo_users(conn)

        counts = {slug: c.__dict__ for slug, c in report.layers.items()}
        if report.changed:
            finish_batch(
                conn,
                batch_id,
                status="succeeded",
                counts=counts,
                report={"admin_units_changed": report.admin_units_changed},
            )
        else:
            # Nothing changed: leave no trace, so a second seed is a true no-op.
            delete_batch(conn, batch_id)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE feature"))
    return report


def _report_anchor(conn: Connection, layer_id: int) -> datetime:
    """Reports span the 12 months before the first seed, so later seeds reproduce them exactly."""
    first = conn.execute(
        select(func.min(feature.c.created_at)).where(feature.c.layer_id == layer_id)
    ).scalar()
    moment = first if first is not None else datetime.now(UTC)
    return synthetic.utc_day(moment)


def _province_feature() -> synthetic.SyntheticFeature:
    prov = load_province()
    return synthetic.SyntheticFeature(
        prov.code,
        prov.geometry,
        {
            "code": prov.code,
            "name": prov.name,
            "population": prov.population,
            "area_km2": prov.area_km2,
        },
    )


def _ward_feature(ward: Ward) -> synthetic.SyntheticFeature:
    return synthetic.SyntheticFeature(
        ward.code,
        ward.geometry,
        {
            "code": ward.code,
            "name": ward.name,
            "kind": ward.kind,
            "population": ward.population,
            "area_km2": ward.area_km2,
            "density": ward.density,
            "repaired": ward.repaired,
        },
    )


def _seed_admin_units(conn: Connection, wards: Sequence[Ward]) -> int:
    prov = load_province()
    rows = [
        _admin_row(
            prov.code,
            prov.name,
            "Tỉnh",
            "province",
            None,
            prov.geometry,
            prov.population,
            prov.area_km2,
        )
    ]
    rows += [
        _admin_row(
            w.code, w.name, w.kind, "commune", prov.code, w.geometry, w.population, w.area_km2
        )
        for w in wards
    ]
    stmt = insert(admin_unit).values(rows)
    excluded = stmt.excluded
    stmt = stmt.on_conflict_do_update(
        index_elements=[admin_unit.c.code, admin_unit.c.valid_from],
        set_={
            "name": excluded.name,
            "kind": excluded.kind,
            "level": excluded.level,
            "parent_code": excluded.parent_code,
            "geom": excluded.geom,
            "population": excluded.population,
            "area_km2": excluded.area_km2,
            "properties": excluded.properties,
        },
        where=(
            func.ST_Equals(admin_unit.c.geom, excluded.geom).is_(False)
            | admin_unit.c.name.is_distinct_from(excluded.name)
            | admin_unit.c.population.is_distinct_from(excluded.population)
            | admin_unit.c.area_km2.is_distinct_from(excluded.area_km2)
            | admin_unit.c.parent_code.is_distinct_from(excluded.parent_code)
            | admin_unit.c.properties.is_distinct_from(excluded.properties)
        ),
    )
    return len(conn.execute(stmt.returning(admin_unit.c.id)).all())


def _admin_row(
    code: str,
    name: str,
    kind: str,
    level: str,
    parent: str | None,
    geom: MultiPolygon,
    population: int,
    area_km2: float,
) -> dict[str, object]:
    return {
        "code": code,
        "name": name,
        "kind": kind,
        "level": level,
        "parent_code": parent,
        "geom": from_shape(geom, srid=4326),
        "population": population,
        "area_km2": area_km2,
        "valid_from": REFORM_DATE,
        "valid_to": None,
        "properties": orjson.loads(orjson.dumps({"source": "vietnam-3d-map 2025"})),
    }
