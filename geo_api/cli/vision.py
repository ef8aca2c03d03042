"""`iocmap vision …`: run a camera, supervise all cameras, calibrate, draw zones, retention."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import typer

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.errors import InvalidInputError

vision_app = typer.Typer(
    help="Cameras: detection pipeline, calibration, zones.", no_args_is_help=True
)


@vision_app.command("run")
@friendly_errors
def run(
    camera: str = typer.Option(..., "--camera", help="camera_id of a camera in the cameras layer"),
    source: str | None = typer.Option(
        None, help="Override the stream URL (file, rtsp://, http://)"
    ),
    detector: str | None = typer.Option(None, help="motion, hog_people or onnx_yolo"),
    detector_params: str | None = typer.Option(
        None, help='Detector parameters as JSON, e.g. {"model_path": "yolo11n.onnx"}'
    ),
    loop: bool = typer.Option(False, help="Loop a file source forever"),
    realtime: bool = typer.Option(True, help="Pace a file source at its frame rate"),
    max_frames: int | None = typer.Option(None, help="Stop after this many frames"),
) -> None:
    """Run one camera's pipeline in this process until the source ends or Ctrl-C."""
    from vision.runner import CameraWorker, RunOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    try:
        params = json.loads(detector_params) if detector_params else None
    except ValueError as exc:
        raise InvalidInputError(f"--detector-params is not JSON: {exc}") from exc
    opts = RunOptions(
        source=source,
        detector=detector,
        detector_params=params,
        loop=loop,
        realtime=realtime,
        max_frames=max_frames,
    )
    with migrated_engine(settings) as engine:
        worker = CameraWorker(settings, camera, opts, engine=engine)
        signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
        try:
            summary = worker.run()
        except KeyboardInterrupt:
            worker.stop.set()
            summary = worker.summary
    typer.echo(
        json.dumps(
            {
                "camera_id": summary.camera_id,
                "frames": summary.frames,
                "detector_calls": summary.detector_calls,
                "events": summary.events,
                "counts_written": summary.counts_written,
            }
        )
    )


@vision_app.command("supervise")
@friendly_errors
def supervise(
    poll_s: float = typer.Option(5.0, help="Seconds between checks of the camera registry"),
) -> None:
    """Run every enabled camera in its own process, restarting crashed ones."""
    from vision.runner import Supervisor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    with migrated_engine(settings):
        pass
    sup = Supervisor(settings, poll_s=poll_s)
    signal.signal(signal.SIGTERM, lambda *_: sup.stop.set())
    try:
        sup.run()
    except KeyboardInterrupt:
        sup.stop.set()


@vision_app.command("calibrate")
@friendly_errors
def calibrate(
    camera: str = typer.Option(..., "--camera"),
    points: str = typer.Option(..., help='JSON file: list of {"u","v","lon","lat"} (≥4)'),
    width: int = typer.Option(640, help="Width of the image the pixels refer to"),
    height: int = typer.Option(352, help="Height of the image the pixels refer to"),
    max_error_m: float | None = typer.Option(None, help="Refuse above this RMS error (m)"),
    crs: str = typer.Option("local", help="Ground frame: local, or e.g. EPSG:9208"),
) -> None:
    """Fit and store a camera's homography from image↔ground control points."""
    from layers import cameras
    from vision.geo import CalibrationError, ControlPoint, GroundFrame, fit_homography

    settings = load_settings()
    limit = max_error_m if max_error_m is not None else settings.vision_max_calibration_error_m
    raw = json.loads(Path(points).read_text())
    pts = [
        ControlPoint(float(p["u"]), float(p["v"]), float(p["lon"]), float(p["lat"])) for p in raw
    ]
    with migrated_engine(settings) as engine, engine.begin() as conn:
        cam = cameras.get_camera(conn, camera)
        frame = GroundFrame(cam.lon, cam.lat, crs)
        try:
            cal = fit_homography(pts, frame, limit)
        except CalibrationError as exc:
            raise InvalidInputError(str(exc), camera_id=camera) from exc
        cameras.save_calibration(
            conn,
            cameras.CalibrationRecord(
                camera_id=camera,
                ground_crs=crs,
                origin_lon=cam.lon,
                origin_lat=cam.lat,
                image_width=width,
                image_height=height,
                control_points=[p.__dict__ for p in pts],
                homography=cal.homography.tolist(),
                reprojection_error_m=cal.rms_error_m,
                max_error_m=limit,
            ),
        )
    typer.echo(f"calibrated {camera}: RMS {cal.rms_error_m:.3f} m, max {cal.max_error_m:.3f} m")


@vision_app.command("add-zone")
@friendly_errors
def add_zone(
    camera: str = typer.Option(..., "--camera"),
    name: str = typer.Option(...),
    kind: str = typer.Option(..., help="forbidden, no_parking, counting_line, lane or area"),
    geojson: str = typer.Option(..., help="GeoJSON geometry in WGS84 (text or a file path)"),
    params: str = typer.Option("{}", help='Rule parameters as JSON, e.g. {"direction_deg": 90}'),
) -> None:
    """Store a zone drawn in map coordinates."""
    from layers import cameras

    text = Path(geojson).read_text() if Path(geojson).exists() else geojson
    try:
        spec = cameras.ZoneSpec(
            name=name, kind=kind, geometry=json.loads(text), params=json.loads(params)
        )
    except ValueError as exc:
        raise InvalidInputError(f"bad zone: {exc}") from exc
    settings = load_settings()
    with migrated_engine(settings) as engine, engine.begin() as conn:
        zid = cameras.add_zone(conn, camera, spec)
    typer.echo(f"zone {zid} added to {camera}")


@vision_app.command("demo-zones")
@friendly_errors
def demo_zones(
    camera: str = typer.Option(..., "--camera"),
    width: int = typer.Option(640, help="Frame width the zones are laid out on"),
    height: int = typer.Option(352, help="Frame height the zones are laid out on"),
) -> None:
    """Give a camera a counting line and a lane laid out in its image (for demos)."""
    from layers import cameras
    from vision.runner import calibration_for

    settings = load_settings()
    with migrated_engine(settings) as engine, engine.begin() as conn:
        cam = cameras.get_camera(conn, camera)
        cal = calibration_for(cam, cameras.get_calibration(conn, camera), width, height)
        w, h = float(width), float(height)
        line = cal.image_to_wgs84([(0.1 * w, 0.65 * h), (0.9 * w, 0.65 * h)]).tolist()
        lane = cal.image_to_wgs84(
            [(0.0, h), (w, h), (0.75 * w, 0.45 * h), (0.25 * w, 0.45 * h)]
        ).tolist()
        specs = [
            cameras.ZoneSpec(
                name="Vạch đếm xe",
                kind="counting_line",
                geometry={"type": "LineString", "coordinates": line},
            ),
            cameras.ZoneSpec(
                name="Làn đường",
                kind="lane",
                geometry={"type": "Polygon", "coordinates": [[*lane, lane[0]]]},
                params={"direction_deg": cam.heading_deg, "speed_limit_kmh": 50},
            ),
        ]
        ids = [cameras.add_zone(conn, camera, z) for z in specs]
    typer.echo(f"zones {ids} added to {camera}")


@vision_app.command("cameras")
@friendly_errors
def list_cameras() -> None:
    """List registered cameras with their status."""
    from layers import cameras

    settings = load_settings()
    with migrated_engine(settings) as engine, engine.begin() as conn:
        for c in cameras.list_cameras(conn):
            typer.echo(
                f"{c.camera_id}\t{c.status}\t{'on' if c.enabled else 'off'}\t"
                f"{'calibrated' if c.calibrated else 'pose'}\t{c.stream_url}"
            )


@vision_app.command("retention")
@friendly_errors
def retention() -> None:
    """Delete snapshots older than IOC_VISION_SNAPSHOT_RETENTION_DAYS."""
    from vision.runner import apply_retention

    settings = load_settings()
    with migrated_engine(settings) as engine:
        removed = apply_retention(settings, engine)
    typer.echo(f"removed {removed} snapshot files")


def register(app: typer.Typer) -> None:
    """Attach the `vision` group."""
    app.add_typer(vision_app, name="vision")
