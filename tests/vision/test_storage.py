"""Camera registry, calibration, zones, state, partitioned events and traffic counts in PostGIS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import Engine, text

from layers import cluster
from layers.errors import InvalidInputError, NotFoundError
from layers.settings import Settings
from layers.vision import cameras, events

T = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def make_camera(conn, camera_id: str = "cam_test_1") -> cameras.CameraRecord:
    """Register a camera and return it."""
    cameras.upsert_camera(
        conn,
        cameras.CameraSpec(
            camera_id=camera_id,
            name="Ngã tư thử nghiệm",
            lon=105.6813,
            lat=18.6796,
            heading_deg=0,
            fov_deg=60,
            range_m=60,
            mount_height_m=8,
            stream_url="vision/data/video/street-640x352.mp4",
        ),
    )
    return cameras.get_camera(conn, camera_id)


def test_camera_registry_round_trip(engine: Engine) -> None:
    with engine.begin() as conn:
        cam = make_camera(conn, "cam_reg")
        assert cam.status == "unknown" and not cam.calibrated and cam.enabled
        assert cam.lon == pytest.approx(105.6813)
        spec = cam.model_dump(include=set(cameras.CameraSpec.model_fields))
        cameras.upsert_camera(
            conn, cameras.CameraSpec(**(spec | {"name": "Renamed", "enabled": False}))
        )
        again = cameras.get_camera(conn, "cam_reg")
        assert again.feature_id == cam.feature_id and again.name == "Renamed"
        assert "cam_reg" not in {c.camera_id for c in cameras.list_cameras(conn, enabled_only=True)}
        with pytest.raises(NotFoundError):
            cameras.get_camera(conn, "nope")


def test_calibration_zones_and_state(engine: Engine) -> None:
    with engine.begin() as conn:
        make_camera(conn, "cam_cal")
        pts = [{"u": float(i), "v": float(i * i), "lon": 105.0, "lat": 18.0} for i in range(4)]
        rec = cameras.CalibrationRecord(
            camera_id="cam_cal",
            origin_lon=105.68,
            origin_lat=18.68,
            image_width=640,
            image_height=352,
            control_points=pts,
            homography=[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            reprojection_error_m=0.2,
            max_error_m=1.0,
        )
        cameras.save_calibration(conn, rec)
        cameras.save_calibration(conn, rec.model_copy(update={"reprojection_error_m": 0.3}))
        got = cameras.get_calibration(conn, "cam_cal")
        assert got is not None and got.reprojection_error_m == 0.3
        with pytest.raises(InvalidInputError, match="exceeds"):
            cameras.save_calibration(conn, rec.model_copy(update={"reprojection_error_m": 2.0}))
        poly = {
            "type": "Polygon",
            "coordinates": [
                [[105.68, 18.68], [105.681, 18.68], [105.681, 18.681], [105.68, 18.68]]
            ],
        }
        zid = cameras.add_zone(
            conn, "cam_cal", cameras.ZoneSpec(name="cấm", kind="forbidden", geometry=poly)
        )
        line = {"type": "LineString", "coordinates": [[105.68, 18.68], [105.681, 18.68]]}
        cameras.add_zone(
            conn, "cam_cal", cameras.ZoneSpec(name="line", kind="counting_line", geometry=line)
        )
        with pytest.raises(InvalidInputError, match="LineString"):
            cameras.add_zone(
                conn, "cam_cal", cameras.ZoneSpec(name="x", kind="counting_line", geometry=poly)
            )
        zones = cameras.list_zones(conn, "cam_cal")
        assert [z.kind for z in zones] == ["forbidden", "counting_line"] and zones[0].id == zid
        assert zones[0].geometry["type"] == "Polygon"

        cameras.set_state(conn, "cam_cal", status="online", last_frame_at=T, worker_pid=1)
        cam = cameras.get_camera(conn, "cam_cal")
        assert cam.status == "online" and cam.last_frame_at == T and cam.calibrated
        status = conn.execute(
            text(
                "SELECT properties->>'status' FROM feature f JOIN layer l ON l.id = f.layer_id "
                "WHERE l.slug = 'cameras' AND properties->>'camera_id' = 'cam_cal'"
            )
        ).scalar()
        assert status == "online"


def test_events_partitioned_notified_and_queried(engine: Engine, settings: Settings) -> None:
    listener = psycopg.connect(cluster.libpq_url(str(settings.database_url)), autocommit=True)
    listener.execute("LISTEN iocmap_events")
    with engine.begin() as conn:
        make_camera(conn, "cam_ev")
        batch = [
            events.EventIn(
                camera_id="cam_ev",
                event_type=kind,
                observed_at=T + timedelta(days=40 * i),
                class_name="car",
                confidence=0.9,
                track_id=i,
                lon=105.6813,
                lat=18.6796,
                attributes={"speed_kmh": 30},
            )
            for i, kind in enumerate(["detection", "intrusion", "wrong_way"])
        ]
        ids = events.insert_events(conn, batch)
        assert len(ids) == 3
        parts = (
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'detection_event'::regclass ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
        assert {
            "detection_event_2026m11",
            "detection_event_2027m01",
            "detection_event_2027m02",
        } <= set(parts)
        brin = conn.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_detection_event_observed_at'"
            )
        ).scalar()
        assert "brin" in brin
        got = events.query_events(conn, camera_id="cam_ev", types=["intrusion", "wrong_way"])
        assert [e.event_type for e in got] == ["wrong_way", "intrusion"]
        assert got[0].lon == pytest.approx(105.6813) and got[0].attributes == {"speed_kmh": 30}
        assert (
            events.query_events(conn, camera_id="cam_ev", time_to=T + timedelta(days=1))[0].id
            == ids[0]
        )
        assert events.latest_events(conn)["cam_ev"].event_type == "wrong_way"
        assert cameras.get_camera(conn, "cam_ev").last_event_at == T + timedelta(days=80)
        with pytest.raises(InvalidInputError):
            events.query_events(conn, time_from=T, time_to=T - timedelta(seconds=1))
    # Notifications are delivered on commit.
    notes = list(listener.notifies(timeout=5, stop_after=3))
    listener.close()
    assert (
        len(notes) == 3 and '"type":"detection"' in notes[0].payload and len(notes[0].payload) < 200
    )


def test_traffic_counts_layer_sums_a_minute(engine: Engine) -> None:
    with engine.begin() as conn:
        c = events.CountIn(
            camera_id="cam_tc",
            zone_id=1,
            minute=T,
            vehicle_class="car",
            count=3,
            lon=105.68,
            lat=18.68,
        )
        events.upsert_traffic_counts(conn, [c])
        events.upsert_traffic_counts(
            conn,
            [
                c.model_copy(update={"count": 2}),
                c.model_copy(update={"vehicle_class": "truck", "count": 1}),
            ],
        )
        rows = conn.execute(
            text(
                "SELECT properties->>'vehicle_class', (properties->>'count')::int, observed_at "
                "FROM feature f JOIN layer l ON l.id = f.layer_id WHERE l.slug = 'traffic_counts' "
                "AND properties->>'camera_id' = 'cam_tc' ORDER BY 1"
            )
        ).all()
        assert [(r[0], r[1]) for r in rows] == [("car", 5), ("truck", 1)]
        assert rows[0][2] == T


def test_snapshot_retention_forgets_old_paths(engine: Engine) -> None:
    with engine.begin() as conn:
        events.insert_events(
            conn,
            [
                events.EventIn(
                    camera_id="cam_ret",
                    event_type="detection",
                    observed_at=T - timedelta(days=10),
                    snapshot_path="/x/old.jpg",
                ),
                events.EventIn(
                    camera_id="cam_ret",
                    event_type="detection",
                    observed_at=T,
                    snapshot_path="/x/new.jpg",
                ),
            ],
        )
        assert events.take_expired_snapshots(conn, T - timedelta(days=1)) == ["/x/old.jpg"]
        assert events.take_expired_snapshots(conn, T - timedelta(days=1)) == []


def test_rule_events_open_deduplicated_alerts(engine: Engine) -> None:
    pytest.importorskip("layers.analytics.alerts")
    from vision.alerting import write_event_alerts
    from vision.types import VisionEvent

    e = VisionEvent(
        type="intrusion", t=T, class_name="person", track_id=7, lon=105.68, lat=18.68, zone_id=3
    )
    with engine.begin() as conn:
        assert write_event_alerts(conn, "cam_alert", [e]) == 1
        assert write_event_alerts(conn, "cam_alert", [e]) == 0  # still open: refreshed
        assert write_event_alerts(conn, "cam_alert", [VisionEvent(type="detection", t=T)]) == 0
        row = conn.execute(
            text(
                "SELECT a.severity, a.area_ref, a.evidence->>'event_type', r.enabled "
                "FROM alert a JOIN alert_rule r ON r.id = a.rule_id WHERE a.area_ref = 'cam_alert'"
            )
        ).one()
    # The rule row exists for the alert's sake; the analytics evaluator skips it (disabled).
    assert tuple(row) == ("critical", "cam_alert", "intrusion", False)
