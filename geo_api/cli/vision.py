"""`iocmap vision …`: run a camera, supervise all cameras, calibrate, draw zones, retention."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Any

import typer

from geo_api.cli.common import friendly_errors, load_settings, migrated_engine
from layers.errors import InvalidInputError
from vision.plugins import PluginConfigError

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
    detector: str | None = typer.Option(None, help="ssd_coco (default), motion or onnx_yolo"),
    detector_params: str | None = typer.Option(
        None, help='Detector parameters as JSON, e.g. {"input_size": 300}'
    ),
    detect_interval: float | None = typer.Option(
        None, help="Seconds between detector runs (default IOC_VISION_DETECT_INTERVAL_S)"
    ),
    loop: bool = typer.Option(False, help="Loop a file source forever"),
    realtime: bool = typer.Option(True, help="Pace a file source at its frame rate"),
    max_frames: int | None = typer.Option(None, help="Stop after this many frames"),
) -> None:
    """Run one camera's pipeline in this process until the source ends or Ctrl-C."""
    from vision.runner import CameraWorker, RunOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    params = _json_object(detector_params, "--detector-params") if detector_params else None
    opts = RunOptions(
        source=source,
        detector=detector,
        detector_params=params,
        detect_interval_s=detect_interval,
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
        except PluginConfigError as exc:
            raise InvalidInputError(str(exc), camera_id=camera) from exc
    typer.echo(json.dumps(summary.as_dict()))


def _json_object(text: str, option: str) -> dict[str, Any]:
    """A JSON object given on the command line, or a clear error naming the option."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(f"{option} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInputError(f"{option} must be a JSON object")
    return value


def _detector(name: str, params: dict[str, Any]) -> Any:
    """A detector from the registry, with a clear error for a bad name, key or value."""
    from vision import detectors as _detectors  # noqa: F401  (registers every detector)
    from vision.plugins import DETECTORS

    try:
        return DETECTORS.create(name, params, "--detector-params")
    except PluginConfigError as exc:
        raise InvalidInputError(str(exc)) from exc


@vision_app.command("detect")
@friendly_errors
def detect(
    images: list[Path] = typer.Argument(..., help="Image files"),
    detector: str = typer.Option("ssd_coco", help="Detector plugin"),
    detector_params: str = typer.Option("{}", help="Detector parameters as JSON"),
    output: str = typer.Option("table", "--format", help="json (one object per image) or table"),
) -> None:
    """Run a detector on still images: boxes in each image's own pixels."""
    import cv2

    if output not in ("json", "table"):
        raise InvalidInputError("--format must be json or table")
    det = _detector(detector, _json_object(detector_params, "--detector-params"))
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise InvalidInputError(f"{path}: not a readable image")
        found = det.detect(image)
        items = [
            {"class": lab, "score": round(float(s), 3), "box": [round(float(v), 1) for v in b]}
            for lab, s, b in zip(found.labels, found.scores, found.boxes, strict=True)
        ]
        if output == "json":
            doc = {
                "image": str(path),
                "width": int(image.shape[1]),
                "height": int(image.shape[0]),
                "detections": items,
            }
            typer.echo(json.dumps(doc, ensure_ascii=False))
            continue
        typer.echo(f"{path} ({image.shape[1]}×{image.shape[0]}): {len(items)} detections")
        for it in items:
            x1, y1, x2, y2 = it["box"]
            typer.echo(
                f"  {it['class']:<11}{it['score']:6.3f}  {x1:7.1f} {y1:7.1f} {x2:7.1f} {y2:7.1f}"
            )


@vision_app.command("evaluate")
@friendly_errors
def evaluate(
    directory: Path = typer.Argument(..., help="Images with Pascal VOC .xml beside them"),
    detector: str = typer.Option("ssd_coco", help="Detector plugin"),
    detector_params: str = typer.Option("{}", help="Detector parameters as JSON"),
    split: str | None = typer.Option(None, help="Only this split of DIR/splits.json"),
) -> None:
    """Precision, recall and AP@0.5 per class and for all vehicles, as one JSON object.

    AP is over every box the detector gives down to its candidate floor (0.05 for
    ssd_coco); precision and recall at the detector's configured `min_score`.
    """
    from vision.evaluate import evaluate_dir

    if not directory.is_dir():
        raise InvalidInputError(f"{directory}: not a directory")
    params = _json_object(detector_params, "--detector-params")
    det = _detector(detector, params)
    threshold = float(getattr(getattr(det, "config", None), "min_score", 0.0))
    if detector == "ssd_coco":
        # Every box down to the floor the rider merge works from: the camera's own boxes are
        # exactly those of these scoring ≥ its min_score.
        floor = float(det.config.candidate_min_score)
        det = _detector(detector, {**params, "min_score": min(floor, threshold)})
    try:
        scores, n = evaluate_dir(det.detect, directory, split, threshold)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(str(exc)) from exc
    if n == 0:
        raise InvalidInputError(f"{directory}: no image has a VOC .xml beside it")
    typer.echo(
        json.dumps(
            {
                "directory": str(directory),
                "detector": detector,
                "split": split,
                "images": n,
                "iou": 0.5,
                "min_score": threshold,
                "classes": {k: v.as_dict() for k, v in scores.items() if k != "vehicles"},
                "vehicles": scores["vehicles"].as_dict(),
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
    from layers.vision import cameras
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
    from layers.vision import cameras

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
    camera: str = typer.Option("CA-01", "--camera"),
) -> None:
    """Give a camera the demo street's fitted calibration, counting line and lane.

    `iocmap seed demo` already does this for CA-01; every demo camera streams the same
    video, so any of them can be given the same layout.
    """
    from vision.demo import seed_demo_camera

    settings = load_settings()
    with migrated_engine(settings) as engine, engine.begin() as conn:
        wrote = seed_demo_camera(conn, camera)
    typer.echo(f"camera {camera}: calibration and zones {'written' if wrote else 'unchanged'}")


@vision_app.command("cameras")
@friendly_errors
def list_cameras() -> None:
    """List registered cameras with their status."""
    from layers.vision import cameras

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
