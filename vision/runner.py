"""The I/O edge of vision: run one camera against the database, and supervise all of them.

A worker reads its camera from the registry, opens the stream, runs the pipeline on
each frame and writes what comes out: events (with snapshot JPEGs) through layers.vision.events,
the latest frame and live status through layers.vision.cameras, per-minute counts into the
`traffic_counts` layer, and alerts through layers.analytics.alerts when that module provides a hook.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import shapely.geometry
from sqlalchemy import Engine

from layers.db import make_engine
from layers.settings import Settings
from layers.vision import cameras as cam_db
from layers.vision import events as ev_db
from vision import detectors as _detectors  # noqa: F401  (registers every detector)
from vision import tracking as _tracking  # noqa: F401  (registers bytetrack)
from vision.alerting import write_event_alerts
from vision.broker import SpooledPublisher
from vision.draw import draw_overlay, encode_jpeg
from vision.geo import Calibration, GroundFrame, pose_calibration
from vision.motion import MotionGate
from vision.pipeline import FrameResult, Pipeline
from vision.plugins import DETECTORS, TRACKERS, Frame
from vision.privacy import Blurrer, delete_files, sweep_old_files
from vision.rules import RuleEngine, RuleSettings, Zone, zone_from_wgs84
from vision.sources import Backoff, open_source
from vision.types import VisionEvent

log = logging.getLogger("iocmap.vision")


@dataclass
class RunOptions:
    """How to run one camera (the CLI and the supervisor fill this in)."""

    source: str | None = None
    detector: str | None = None
    detector_params: dict[str, Any] | None = None
    detect_interval_s: float | None = None
    loop: bool = False
    realtime: bool = True
    max_frames: int | None = None
    max_seconds: float | None = None
    start_time: datetime | None = None
    privacy_blur: bool | None = None
    frame_interval_s: float = 2.0
    snapshot_interval_s: float = 1.0
    max_attempts: int | None = None
    backoff_initial_s: float = 0.5


@dataclass
class RunSummary:
    """What a run did, for the CLI and the benchmark."""

    camera_id: str
    frames: int = 0
    detector_calls: int = 0
    events: dict[str, int] = field(default_factory=dict)
    counts_written: int = 0
    latencies_s: list[float] = field(default_factory=list)
    status: str = "stopped"
    line_crossings: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON line `iocmap vision run` ends with."""
        return {
            "camera_id": self.camera_id,
            "frames": self.frames,
            "detector_calls": self.detector_calls,
            "events": self.events,
            "events_by_type": self.events,
            "line_crossings": {
                "total": sum(self.line_crossings.values()),
                "by_class": dict(sorted(self.line_crossings.items())),
            },
            "counts_written": self.counts_written,
        }


def calibration_for(
    camera: cam_db.CameraRecord,
    record: cam_db.CalibrationRecord | None,
    width: int,
    height: int,
) -> Calibration:
    """The stored calibration scaled to this frame size, or one from the camera's pose."""
    if record is None:
        frame = GroundFrame(camera.lon, camera.lat)
        return pose_calibration(
            frame,
            width,
            height,
            camera.heading_deg,
            camera.fov_deg,
            camera.mount_height_m,
            camera.range_m,
        )
    frame = GroundFrame(record.origin_lon, record.origin_lat, record.ground_crs)
    h = np.asarray(record.homography, dtype=np.float64)
    # The homography was fitted on image_width×height pixels; frames may be downscaled.
    scale = np.diag([record.image_width / width, record.image_height / height, 1.0])
    return Calibration(h @ scale, frame, record.reprojection_error_m, record.reprojection_error_m)


def zones_for(records: list[cam_db.ZoneRecord], frame: GroundFrame) -> list[Zone]:
    """Map zones converted into the camera's ground frame."""
    return [
        zone_from_wgs84(z.id, z.name, z.kind, shapely.geometry.shape(z.geometry), z.params, frame)
        for z in records
    ]


@dataclass(frozen=True)
class PluginChoice:
    """A camera's detector and tracker by name, with their parameters (validated on use)."""

    detector: str
    detector_params: dict[str, Any]
    tracker: str = "bytetrack"
    tracker_params: dict[str, Any] = field(default_factory=dict)
    detect_interval_s: float = 0.0


def validate_plugins(camera_id: str, choice: PluginChoice) -> None:
    """Refuse an unknown plugin, key or value with an error naming the camera and the field."""
    where = f"camera '{camera_id}'"
    DETECTORS.validate(choice.detector, choice.detector_params, where)
    TRACKERS.validate(choice.tracker, choice.tracker_params, where)


def build_pipeline(
    camera: cam_db.CameraRecord,
    calibration: Calibration,
    zones: list[Zone],
    choice: PluginChoice,
    fps: float,
) -> Pipeline:
    """Assemble the stages for one camera from the plugin registries."""
    where = f"camera '{camera.camera_id}'"
    detector = DETECTORS.create(
        choice.detector, choice.detector_params, where, calibration=calibration
    )
    tracker = TRACKERS.create(choice.tracker, choice.tracker_params, where, frame_rate=fps or 25.0)
    detector_name = choice.detector
    # The motion detector is its own gate; every other detector sits behind one.
    gate = None if detector_name == "motion" else MotionGate()
    return Pipeline(
        detector,
        tracker,
        calibration,
        RuleEngine(
            zones,
            calibration.frame,
            RuleSettings(
                detection_min_age_s=0.5,
                detection_min_travel_m=1.5 if detector_name == "motion" else 0.0,
            ),
        ),
        gate=gate,
        max_ground_range_m=camera.range_m * 1.5,
        detect_interval_s=choice.detect_interval_s if detector_name != "motion" else 0.0,
    )


ALERT_EVENT_TYPES = frozenset(
    {"intrusion", "crowd", "congestion", "wrong_way", "stopped_vehicle", "speeding"}
)


class CameraWorker:
    """Runs one camera until its source ends, `stop` is set, or a limit is reached."""

    def __init__(
        self,
        settings: Settings,
        camera_id: str,
        options: RunOptions | None = None,
        engine: Engine | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.camera_id = camera_id
        self.opts = options or RunOptions()
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings)
        self.stop = stop or threading.Event()
        self.summary = RunSummary(camera_id)
        blur = self.opts.privacy_blur
        self.blurrer = (
            Blurrer() if (settings.vision_privacy_blur if blur is None else blur) else None
        )
        self.media = settings.media_root / "cameras" / camera_id
        self.pipeline: Pipeline | None = None
        self._last_frame_write = -1e18
        self._last_snapshot: tuple[float, str] | None = None
        self._position: tuple[float, float] | None = None
        self.publisher: SpooledPublisher | None = None
        if settings.broker_url:
            self.publisher = SpooledPublisher(
                settings.broker_url,
                settings.broker_spool / camera_id,
                settings.broker_stream,
            )

    # ---- status -----------------------------------------------------------------------

    def on_status(self, status: str, detail: str) -> None:
        """Record a source status change and raise camera_online/camera_offline events."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            cam_db.set_state(
                conn,
                self.camera_id,
                status=cast(cam_db.CameraStatus, status),
                detail=detail,
                worker_pid=os.getpid(),
            )
            if status in ("online", "offline"):
                ev_db.insert_events(
                    conn,
                    [
                        ev_db.EventIn(
                            camera_id=self.camera_id,
                            event_type=f"camera_{status}",
                            observed_at=now,
                            lon=self._position[0] if self._position else None,
                            lat=self._position[1] if self._position else None,
                            attributes={"detail": detail} if detail else {},
                        )
                    ],
                )
        log.info("camera %s %s %s", self.camera_id, status, detail)

    # ---- frames -----------------------------------------------------------------------

    def _write_jpeg(self, path: Path, frame: Frame) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(encode_jpeg(frame))
        tmp.replace(path)  # readers never see half a file

    def _private(self, frame: Frame) -> Frame:
        return self.blurrer.blur(frame) if self.blurrer is not None else frame

    def _overlay(self, result: FrameResult, frame: Frame) -> dict[str, Any]:
        return {
            "width": int(frame.shape[1]),
            "height": int(frame.shape[0]),
            "t": result.t.isoformat(),
            "boxes": [
                {
                    "track_id": tr.track_id,
                    "label": tr.label,
                    "score": round(tr.score, 3),
                    "box": [round(v, 1) for v in tr.box],
                }
                for tr in result.tracks
            ],
        }

    def handle(self, frame: Frame, result: FrameResult, t_read: float) -> None:
        """Write this frame's outputs."""
        assert self.pipeline is not None
        rules = self.pipeline.rules
        counts = rules.flush_counts(result.t) if rules is not None else []
        # Intervals run on frame time, so a file processed faster than real time writes
        # as many images as a live camera would, not one per frame.
        now = result.t.timestamp()
        write_frame = now - self._last_frame_write >= self.opts.frame_interval_s
        if not result.events and not counts and not write_frame:
            return
        new_snapshot = bool(result.events) and (
            self._last_snapshot is None
            or now - self._last_snapshot[0] >= self.opts.snapshot_interval_s
        )
        snapshot_path: Path | None = None
        if new_snapshot:
            snapshot_path = self.media / "events" / f"{result.t.strftime('%Y%m%d/%H%M%S_%f')}.jpg"
            self._last_snapshot = (now, str(snapshot_path))
        snapshot = self._last_snapshot[1] if self._last_snapshot and result.events else None
        # First the rows operators wait for (commit → NOTIFY → SSE); the images follow,
        # because the privacy blur is the slow part and must not delay the alarm.
        if result.events or counts:
            events_in = [self._event_in(e, snapshot) for e in result.events]
            if self.publisher is not None and events_in:
                # Through the broker (issue 23): spooled on disk first, stored by the API.
                self.publisher.publish(events_in)
                events_in = []
            with self.engine.begin() as conn:
                if events_in:
                    ev_db.insert_events(conn, events_in)
                if result.events:
                    alerting = [e for e in result.events if e.type in ALERT_EVENT_TYPES]
                    if alerting:
                        write_event_alerts(conn, self.camera_id, alerting)
                if counts:
                    self.summary.counts_written += ev_db.upsert_traffic_counts(
                        conn, [self._count_in(c) for c in counts]
                    )
            if result.events:
                self.summary.latencies_s.append(time.monotonic() - t_read)
        for e in result.events:
            self.summary.events[e.type] = self.summary.events.get(e.type, 0) + 1
            if e.type == "line_crossing" and e.class_name:
                lc = self.summary.line_crossings
                lc[e.class_name] = lc.get(e.class_name, 0) + 1
        if snapshot_path is None and not write_frame:
            return
        private = self._private(frame)  # blur once, for both images
        if snapshot_path is not None:
            boxes = [
                {"box": e.box, "label": e.type, "track_id": e.track_id}
                for e in result.events
                if e.box is not None
            ]
            self._write_jpeg(snapshot_path, draw_overlay(private, boxes))
        if write_frame:
            latest = self.media / "latest.jpg"
            self._write_jpeg(latest, private)
            self._last_frame_write = now
            with self.engine.begin() as conn:
                cam_db.set_state(
                    conn,
                    self.camera_id,
                    last_frame_at=result.t,
                    frame_path=str(latest),
                    overlay=self._overlay(result, frame),
                )

    def _event_in(self, e: VisionEvent, snapshot: str | None) -> ev_db.EventIn:
        return ev_db.EventIn(
            camera_id=self.camera_id,
            event_type=e.type,
            observed_at=e.t,
            class_name=e.class_name,
            confidence=e.confidence,
            track_id=e.track_id,
            zone_id=e.zone_id,
            lon=e.lon,
            lat=e.lat,
            snapshot_path=snapshot,
            attributes=e.attributes,
        )

    def _count_in(self, c: Any) -> ev_db.CountIn:
        assert self.pipeline is not None and self.pipeline.rules is not None
        zone = next((z for z in self.pipeline.rules.zones if z.id == c.zone_id), None)
        frame = self.pipeline.rules.frame
        if zone is not None:
            mid = zone.geometry.interpolate(0.5, normalized=True)
            lon, lat = frame.to_wgs84([[mid.x, mid.y]])[0]
        else:
            lon, lat = frame.origin_lon, frame.origin_lat
        return ev_db.CountIn(
            camera_id=self.camera_id,
            zone_id=c.zone_id,
            minute=c.minute,
            vehicle_class=c.class_name,
            count=c.count,
            lon=float(lon),
            lat=float(lat),
        )

    # ---- main loop --------------------------------------------------------------------

    def plugin_choice(self) -> PluginChoice:
        """The detector and tracker this run uses: the options', else the settings'."""
        o, st = self.opts, self.settings
        name = o.detector or st.vision_detector
        if o.detector_params is not None:
            params = dict(o.detector_params)
        elif o.detector and o.detector != st.vision_detector:
            params = {}  # the settings' parameters belong to the settings' detector
        else:
            params = dict(st.vision_detector_params)
        interval = (
            o.detect_interval_s if o.detect_interval_s is not None else st.vision_detect_interval_s
        )
        return PluginChoice(
            name, params, st.vision_tracker, dict(st.vision_tracker_params), interval
        )

    def run(self) -> RunSummary:
        """Open the source and process frames until told to stop."""
        with self.engine.begin() as conn:
            camera = cam_db.get_camera(conn, self.camera_id)
            cal_rec = cam_db.get_calibration(conn, self.camera_id)
            zone_recs = cam_db.list_zones(conn, self.camera_id)
            cam_db.set_state(conn, self.camera_id, status="starting", worker_pid=os.getpid())
        self._position = (camera.lon, camera.lat)
        choice = self.plugin_choice()
        validate_plugins(self.camera_id, choice)
        url = self.opts.source or camera.stream_url
        if "://" not in url and not Path(url).is_absolute() and not Path(url).exists():
            # Demo stream URLs are relative to the repository (vision/data/...).
            url = str(Path(__file__).resolve().parent.parent / url)
        source = open_source(
            url,
            {
                "loop": self.opts.loop,
                "realtime": self.opts.realtime,
                "max_width": self.settings.vision_max_width,
                "max_attempts": self.opts.max_attempts,
            },
            where=f"camera '{self.camera_id}'",
            on_status=self.on_status,
            start_time=self.opts.start_time,
            backoff=Backoff(self.opts.backoff_initial_s),
            sleep=lambda s: self.stop.wait(s),
        )
        started = time.monotonic()
        try:
            for frame, t in source.frames():
                t_read = time.monotonic()
                if self.pipeline is None:
                    cal = calibration_for(camera, cal_rec, frame.shape[1], frame.shape[0])
                    zones = zones_for(zone_recs, cal.frame)
                    fps = float(getattr(source, "fps", 0.0) or 25.0)
                    self.pipeline = build_pipeline(camera, cal, zones, choice, fps)
                result = self.pipeline.process(frame, t)
                self.handle(frame, result, t_read)
                self.summary.frames += 1
                if self.stop.is_set():
                    break
                if self.opts.max_frames and self.summary.frames >= self.opts.max_frames:
                    break
                if self.opts.max_seconds and time.monotonic() - started >= self.opts.max_seconds:
                    break
        finally:
            source.close()
            self._finish()
        return self.summary

    def _finish(self) -> None:
        if self.pipeline is not None:
            self.summary.detector_calls = self.pipeline.stats.detector_calls
            rules = self.pipeline.rules
            rest = rules.flush_counts() if rules is not None else []
            if rest:
                with self.engine.begin() as conn:
                    self.summary.counts_written += ev_db.upsert_traffic_counts(
                        conn, [self._count_in(c) for c in rest]
                    )
        with self.engine.begin() as conn:
            cam_db.set_state(conn, self.camera_id, status="stopped", detail="")
        if self.publisher is not None:
            self.publisher.close()  # what the broker has not taken stays spooled for next time
        if self._own_engine:
            self.engine.dispose()


def run_camera(settings: Settings, camera_id: str, options: RunOptions | None = None) -> RunSummary:
    """Run one camera in this process (the `iocmap vision run` command)."""
    return CameraWorker(settings, camera_id, options).run()


def apply_retention(settings: Settings, engine: Engine, now: datetime | None = None) -> int:
    """Delete snapshots older than the retention time; returns how many files went."""
    now = now or datetime.now(UTC)
    days = settings.vision_snapshot_retention_days
    cutoff = now - timedelta(days=days)
    with engine.begin() as conn:
        paths = ev_db.take_expired_snapshots(conn, cutoff)
    root = settings.media_root / "cameras"
    removed = delete_files(paths, root)
    return removed + sweep_old_files(root, days * 86400.0, now.timestamp())


# ---- supervisor ------------------------------------------------------------------------


def _worker_main(settings: Settings, camera_id: str, options: RunOptions) -> None:
    """Entry point of a camera's own process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    CameraWorker(settings, camera_id, options, stop=stop).run()


class Supervisor:
    """Keeps one process per enabled camera, restarting crashed ones with backoff."""

    def __init__(
        self,
        settings: Settings,
        options: RunOptions | None = None,
        poll_s: float = 5.0,
        retention_every_s: float = 3600.0,
    ) -> None:
        self.settings = settings
        self.options = options or RunOptions(loop=True, realtime=True)
        self.poll_s = poll_s
        self.retention_every_s = retention_every_s
        self.stop = threading.Event()
        self.procs: dict[str, mp.process.BaseProcess] = {}
        self._backoff: dict[str, Backoff] = {}
        self._next_start: dict[str, float] = {}
        self._ctx = mp.get_context("spawn")

    def _enabled(self, engine: Engine) -> list[str]:
        """Enabled cameras, the first IOC_VISION_MAX_WORKERS by camera_id (CPU is finite)."""
        with engine.begin() as conn:
            ids = [c.camera_id for c in cam_db.list_cameras(conn, enabled_only=True)]
        limit = self.settings.vision_max_workers
        if len(ids) > limit:
            log.warning("%d cameras enabled; running the first %d", len(ids), limit)
        return ids[:limit]

    def reconcile(self, engine: Engine) -> None:
        """Start missing workers, restart dead ones, stop those of disabled cameras."""
        wanted = set(self._enabled(engine))
        now = time.monotonic()
        for cam_id in list(self.procs):
            if cam_id not in wanted:
                self._terminate(cam_id)
        for cam_id in sorted(wanted):
            proc = self.procs.get(cam_id)
            if proc is not None and proc.is_alive():
                continue
            if proc is not None:
                delay = self._backoff.setdefault(cam_id, Backoff(1.0, 60.0)).fail()
                self._next_start[cam_id] = now + delay
                del self.procs[cam_id]
                log.warning(
                    "camera %s worker exited (%s); restart in %.0fs", cam_id, proc.exitcode, delay
                )
            if now < self._next_start.get(cam_id, 0.0):
                continue
            p = self._ctx.Process(
                target=_worker_main,
                args=(self.settings, cam_id, self.options),
                name=f"iocmap-vision-{cam_id}",
                daemon=True,
            )
            p.start()
            self.procs[cam_id] = p

    def _terminate(self, cam_id: str) -> None:
        proc = self.procs.pop(cam_id, None)
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()

    def run(self) -> None:
        """Supervise until `stop` is set (SIGTERM/SIGINT in the CLI)."""
        engine = make_engine(self.settings)
        last_retention = 0.0
        try:
            while not self.stop.is_set():
                self.reconcile(engine)
                if time.monotonic() - last_retention >= self.retention_every_s:
                    apply_retention(self.settings, engine)
                    last_retention = time.monotonic()
                self.stop.wait(self.poll_s)
        finally:
            for cam_id in list(self.procs):
                self._terminate(cam_id)
            engine.dispose()
