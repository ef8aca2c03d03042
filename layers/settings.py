"""The one configuration object of IOC Map, read from IOC_* environment variables."""

from __future__ import annotations

import getpass
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Once the built-in development key: public, so refused wherever it is still configured.
PUBLIC_SECRETS = frozenset({"change-me-dev-only-secret"})
SECRET_FILE = "secret_key"


def state_secret(state_dir: Path) -> str:
    """The signing key kept in the state directory (mode 0600), created at first use.

    Random (256 bits); created with O_EXCL so processes starting together agree on one key.
    """
    path = state_dir / SECRET_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def _default_state_dir() -> Path:
    """Per-user state directory; root uses /var/lib so the unprivileged DB user can reach it."""
    if os.geteuid() == 0:
        return Path("/var/lib/iocmap")
    return Path.home() / ".local" / "share" / "iocmap"


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to IOC_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="IOC_", env_file=None, extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    database_url: str | None = Field(
        default=None,
        description="Use this PostGIS instead of the project-managed cluster.",
    )
    state_dir: Path = Field(default_factory=_default_state_dir)
    db_data_dir: Path | None = Field(
        default=None,
        description="Data directory of the managed cluster (default: STATE_DIR/pgdata).",
    )
    db_host: str = "127.0.0.1"
    db_port: int = 55432
    db_name: str = "iocmap"
    db_user: str = "iocmap"
    db_system_user: str = Field(
        default="iocmap",
        description="Unprivileged OS user that runs PostgreSQL when invoked as root.",
    )
    pg_bin_dir: Path = Path("/usr/lib/postgresql/15/bin")
    db_pool_size: int = 8

    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: SecretStr | None = Field(
        default=None,
        description="JWT signing key; by default a random key kept in STATE_DIR/secret_key"
        " (set it, the same on every replica, to share sessions between them).",
    )
    cors_origins: list[str] = Field(default_factory=list)
    session_cookie_name: str = "iocmap_session"
    session_cookie_secure: bool = Field(
        default=True, description="Send the web map's session cookie over HTTPS only."
    )
    token_ttl_s: int = Field(default=8 * 3600, description="Lifetime of JWTs and session cookies.")
    max_request_bytes: int = Field(
        default=2 * 1024 * 1024,
        description="Body limit of routes without a larger one of their own.",
    )
    report_max_photos: int = 5
    report_photo_max_bytes: int = 10 * 1024 * 1024
    report_rate_burst: int = Field(
        default=5, description="Public report submissions per client before the rate limit bites."
    )
    report_rate_per_hour: float = Field(
        default=20.0, description="Refill rate of the public submission token bucket."
    )
    report_overdue_interval_s: float = Field(
        default=300.0, description="Seconds between SLA overdue checks in the API (0 disables)."
    )
    auth_cache_s: float = Field(
        default=5.0,
        description="Seconds an API process may reuse a token's user lookup (0: every request).",
    )
    login_rate_burst: int = 10
    login_rate_per_minute: float = 10.0
    login_free_failures: int = Field(
        default=5, description="Failed sign-ins per (account, address) before a wait is imposed."
    )
    login_backoff_base_s: float = Field(
        default=2.0, description="First wait after the free failures; doubles each failure."
    )
    login_backoff_max_s: float = Field(
        default=900.0, description="Longest wait between sign-in attempts of one pair."
    )

    province_code: str = "40"
    province_name: str = "Nghệ An"
    province_official_srid: int = 9208
    province_tolerance_m: float = Field(
        default=1000.0, description="Ingest keeps rows this close outside the province boundary."
    )
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", description="Zone of naive timestamps in imported files."
    )
    ingest_max_upload_bytes: int = 2 * 1024 * 1024 * 1024
    ingest_max_uncompressed_bytes: int = Field(
        default=1024**3, description="An archive may hold at most this much once uncompressed."
    )
    ingest_max_compression_ratio: float = Field(
        default=200.0, description="Uncompressed/compressed size an archive may reach."
    )
    ingest_max_archive_members: int = 10_000
    ingest_max_rows: int = Field(default=5_000_000, description="Rows one import may hold.")
    ingest_max_columns: int = Field(default=2_000, description="Columns of a CSV table at most.")
    ingest_max_line_bytes: int = Field(
        default=1024**2, description="Longest CSV line (and so field) accepted."
    )
    ingest_worker_memory_bytes: int = Field(
        default=6 * 1024**3,
        description="Address-space limit of the process an API import runs in (RLIMIT_AS).",
    )
    ingest_lock_wait_s: float = Field(
        default=600.0, description="How long an import waits for another into the same layer."
    )
    ingest_replace_min_share: float = Field(
        default=0.5,
        description="A replace keeping fewer than this share of the layer's rows needs force.",
    )
    ingest_connectors_file: Path | None = Field(
        default=None, description="YAML file of sector connectors (HTTP pull, drop folder, MQTT)."
    )
    ingest_scheduler: bool = Field(
        default=False, description="Run the connectors' scheduler inside the API server."
    )

    demo_parcels: int = 50_000
    features_max_limit: int = 10_000
    features_default_limit: int = 1_000

    tile_cache_max_bytes: int = Field(
        default=256 * 1024 * 1024, description="In-process tile cache budget (0 disables it)."
    )
    tile_max_bytes: int = Field(
        default=500_000, description="No tile may be larger; low zooms drop/cluster to fit."
    )
    tile_max_age: int = Field(
        default=0, description="Cache-Control max-age of tiles; 0 = revalidate with the ETag."
    )
    ogc_default_limit: int = 10
    ogc_max_limit: int = 10_000
    ogc_exact_count_max_rows: int = Field(
        default=200_000, description="Above this many rows numberMatched is the planner estimate."
    )
    query_max_results: int = 50_000
    # columnar downloads (issue 22): a whole layer in one GeoParquet/FlatGeobuf response
    export_max_rows: int = Field(
        default=2_000_000, ge=1, description="Rows at most in one format=parquet|fgb download."
    )

    analytics_scheduler: bool | None = Field(
        default=None,
        description="Run H3 refresh and alert rules in the API process (default: yes, except in tests).",
    )
    analytics_interval_s: float = Field(
        default=60.0, description="Seconds between scheduled H3 refreshes and rule evaluations."
    )
    analytics_retry_base_s: float = Field(
        default=10.0, description="First retry delay of a failed scheduled job (doubles each time)."
    )
    analytics_retry_max_s: float = Field(
        default=900.0, description="Longest retry delay of a failed scheduled job."
    )

    # incident command (issue 21)
    incident_link_distance_m: float = Field(
        default=2000.0, gt=0, description="Sources this close to an open incident are suggested."
    )
    incident_link_window_h: float = Field(
        default=24.0, gt=0, description="…and seen this many hours before it opened or since."
    )
    incident_default_radius_m: float = Field(default=500.0, gt=0, le=50_000)
    incident_max_radius_m: float = Field(default=50_000.0, gt=0)
    incident_photo_max_bytes: int = Field(default=5 * 1024 * 1024, gt=0)

    media_dir: Path | None = None
    vision_detector: str = Field(
        default="ssd_coco", description="Default detector plugin: ssd_coco, motion, onnx_yolo."
    )
    vision_detector_params: dict[str, object] = Field(
        default_factory=dict, description="Parameters of the default detector (JSON)."
    )
    vision_max_width: int = Field(default=640, description="Frames are downscaled to this width.")
    vision_privacy_blur: bool = Field(
        default=True, description="Blur faces and plates in stored snapshots."
    )
    vision_snapshot_retention_days: float = 7.0
    vision_max_workers: int = Field(
        default=2, description="Camera worker processes the supervisor runs at most."
    )
    vision_max_calibration_error_m: float = 2.0
    # vision (issue 16): detector schedule, tracker, honest camera status
    vision_detect_interval_s: float = Field(
        default=0.2, ge=0.0, description="Seconds between detector runs while there is motion."
    )
    vision_tracker: str = Field(default="bytetrack", description="Tracker plugin.")
    vision_tracker_params: dict[str, object] = Field(
        default_factory=dict, description="Parameters of the tracker (JSON)."
    )
    vision_stale_after_s: float = Field(
        default=30.0, gt=0, description="A camera is online only while its last frame is younger."
    )
    # map search, saved views and the briefing export (issue 18)
    search_min_chars: int = Field(default=2, description="Shortest name query searched.")
    search_max_query_chars: int = Field(default=200, description="Longest query accepted.")
    search_per_layer: int = Field(default=10, description="Name hits per layer at most.")
    ogc_max_offset: int = Field(default=100_000, description="Deepest offset of sorted items.")
    map_views_max: int = Field(default=50, description="Saved map views per user at most.")
    export_max_layers: int = Field(default=12, description="Layers per briefing at most.")
    export_max_features: int = Field(default=5000, description="Features per briefing layer.")
    web_dist_dir: Path | None = Field(
        default=None, description="Built web map assets (default: web_map/dist in the package)."
    )

    # security and reliability (issue 14): pools sized on purpose, load shed with 503s
    db_max_overflow: int = Field(
        default=8, description="Extra SQLAlchemy connections beyond db_pool_size under load."
    )
    db_pool_timeout_s: float = Field(
        default=3.0, description="Longest wait for a pooled connection before answering 503."
    )
    read_pool_size: int = Field(
        default=8, description="Async connections for tiles and layer versions (psycopg_pool)."
    )
    max_inflight_requests: int | None = Field(
        default=None,
        description="Requests handled at once (default db_pool_size + db_max_overflow); others"
        " wait up to request_queue_timeout_s, then get 503 with Retry-After.",
    )
    request_queue_timeout_s: float = Field(
        default=10.0, description="Longest wait for a request slot before a 503."
    )
    retry_after_s: int = Field(
        default=5, description="Retry-After of 503 answers (database away, server busy)."
    )

    # beyond one machine (issue 23): hot standbys for reads, synchronous commit, the broker
    database_read_urls: list[str] = Field(
        default_factory=list,
        description="Hot standbys (JSON list of URLs) for tile, feature, OGC and H3 reads;"
        " writes and read-after-write stay on IOC_DATABASE_URL. Empty: the primary does all.",
    )
    read_standby_timeout_s: float = Field(
        default=2.0, gt=0, description="Connect timeout of a standby before the next is tried."
    )
    broker_url: str | None = Field(
        default=None,
        description="NATS with JetStream (nats://host:4222): camera workers publish detection"
        " events there and the API's writers store them. Unset: workers write to PostgreSQL.",
    )
    broker_stream: str = Field(default="IOCMAP_EVENTS", description="JetStream stream name.")
    broker_spool_dir: Path | None = Field(
        default=None,
        description="Where a worker buffers events while the broker is away"
        " (default STATE_DIR/broker-spool).",
    )
    broker_batch: int = Field(default=200, ge=1, description="Events the writer stores at once.")

    def signing_key(self) -> str:
        """The key tokens are signed with: IOC_SECRET_KEY, else the state directory's own."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return state_secret(self.state_dir)

    # rasters (issue 20)
    raster_max_pixels: int = Field(
        default=300_000_000, description="Largest raster an import accepts (pixels x bands)."
    )
    raster_demo: bool = Field(
        default=True, description="Generate the synthetic DEM and flood-depth rasters at seed."
    )
    raster_demo_res_m: float = Field(
        default=30.0, description="Ground resolution of the synthetic demo DEM, in metres."
    )
    raster_preview_max_pixels: int = Field(
        default=3_000_000,
        description="DEM + water level previews (the map's slider) run on an overview this size.",
    )
    raster_query_max_pixels: int = Field(
        default=120_000_000, description="Pixels a zonal or flood query may read at most."
    )
    raster_profile_max_samples: int = Field(default=2000, description="Samples of a profile.")
    raster_preview_max_listed: int = Field(
        default=25,
        description="Features under water listed per layer in a preview (the slider); the"
        " counts are always whole.",
    )
    raster_cache_max_bytes: int = Field(
        default=1_000_000_000,
        description="Memory for grids read by zonal and flood queries and their coverage"
        " indexes (kept per raster file and polygon set, so repeated queries skip both).",
    )

    # QGIS projects and clients (issue 22)
    qgis_dense_min_features: int = Field(
        default=20_000,
        description="A layer with this many features is also put in QGIS projects as vector tiles.",
    )
    api_token_ttl_days: int = Field(
        default=90, ge=1, le=3650, description="Lifetime of personal API tokens (QGIS, scripts)."
    )
    basic_auth_verify_s: float = Field(
        default=300.0,
        description="Seconds an API process trusts a verified HTTP Basic password before hashing"
        " it again (the account is still re-read every auth_cache_s).",
    )

    @property
    def pg_data_dir(self) -> Path:
        """Data directory of the managed PostgreSQL cluster."""
        return self.db_data_dir or self.state_dir / "pgdata"

    @property
    def media_root(self) -> Path:
        """Where snapshots, uploads and exports are stored."""
        return self.media_dir or self.state_dir / "media"

    @property
    def broker_spool(self) -> Path:
        """Where workers buffer events for the broker."""
        return self.broker_spool_dir or self.state_dir / "broker-spool"

    @property
    def uses_managed_cluster(self) -> bool:
        """True when the project starts its own PostgreSQL rather than using IOC_DATABASE_URL."""
        return self.database_url is None


def current_os_user() -> str:
    """Name of the OS user running this process."""
    return getpass.getuser()
