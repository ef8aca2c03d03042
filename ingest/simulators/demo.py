"""The demo's sector data: start the simulators, run every sector connector once (the CLI then
derives KPIs).

`iocmap seed demo` and `iocmap up` call `seed_sector_data` after the layers are seeded. The
connectors keep their cursors, so a second seed fetches nothing and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from ingest.connectors.config import (
    ConnectorsConfig,
    IndicatorDrop,
    IndicatorPull,
    NewsPull,
    load_config,
)
from ingest.connectors.runner import RunResult, run_connector
from ingest.simulators.app import DEFAULT_SEED, create_simulator_app, serve_in_thread
from ingest.simulators.ktxh import write_exports
from ingest.simulators.systems import Units, demo_units, today_ict
from ingest.simulators.traffic import write_counter_history
from layers.ingest.batches import succeeded_from
from layers.settings import Settings

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "connectors" / "demo.yaml"
DEMO_BASE_URL = "http://127.0.0.1:8071"
DEMO_PORT = 8071
# Days of synthetic vehicle counts the demo seed writes (about 4,900 rows per camera-week).
TRAFFIC_DAYS = 14


def demo_config(base_url: str | None = None, path: Path = DEMO_CONFIG) -> ConnectorsConfig:
    """The demo connectors, pointed at simulators served at `base_url` (default port 8071)."""
    cfg = load_config(path)
    if base_url is None or base_url == DEMO_BASE_URL:
        return cfg
    moved = []
    for c in cfg.connectors:
        if isinstance(c, IndicatorPull | NewsPull) and c.url.startswith(DEMO_BASE_URL):
            c = c.model_copy(update={"url": base_url + c.url[len(DEMO_BASE_URL) :]})
        moved.append(c)
    return ConnectorsConfig(connectors=moved)


def drop_folders(cfg: ConnectorsConfig, settings: Settings) -> list[Path]:
    """The KT-XH drop folders of a config, resolved as the connectors resolve them."""
    out: list[Path] = []
    for c in cfg.connectors:
        if isinstance(c, IndicatorDrop):
            folder = c.path if c.path.is_absolute() else settings.state_dir / c.path
            if folder not in out:
                out.append(folder)
    return out


def seed_sector_data(
    engine: Engine,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    seed: int = DEFAULT_SEED,
    units: Units | None = None,
    today: date | None = None,
    traffic_days: int = TRAFFIC_DAYS,
) -> list[RunResult]:
    """Run every demo connector once against in-process simulators (the caller derives KPIs).

    `units` and `today` narrow the simulated data (tests); by default the whole demo, today.
    `traffic_days` days of synthetic vehicle counts are written at the cameras (see
    ingest.simulators.traffic) so the traffic KPI has data before any counting line is drawn.
    """
    say = progress or (lambda _msg: None)
    units = units or demo_units()
    day = today or today_ict()
    cfg = demo_config()
    drops = [c.name for c in cfg.connectors if isinstance(c, IndicatorDrop)]

    def landed(file_name: str) -> bool:
        # Per database, not per folder: another database sharing the state dir needs its own.
        sources = [f"{name}: {file_name}" for name in drops]
        with engine.connect() as conn:
            return succeeded_from(conn, "connector", sources)

    for folder in drop_folders(cfg, settings):
        for path in write_exports(folder, units, seed, day, landed=landed):
            say(f"KT-XH export written: {path}")
    results: list[RunResult] = []
    with serve_in_thread(create_simulator_app(seed=seed, today=today, units=units)) as url:
        say(f"sector simulators at {url}")
        for c in demo_config(url).connectors:
            res = run_connector(engine, settings, c)
            say(res.summary())
            results.append(res)
    with engine.begin() as conn:
        added = write_counter_history(conn, day, days=traffic_days, seed=seed)
    if added:
        say(f"traffic counters (synthetic): {added} counts of 15 minutes at the cameras")
    # Derived KPIs (analytics.kpi_jobs.refresh_derived) are the caller's: ingest does not
    # reach into analytics.
    return results
