"""What each connector fetches, written to a spool file first so nothing fetched is lost."""

from __future__ import annotations

import fnmatch
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ingest.connectors.config import HttpPull, IndicatorPull, Mqtt, NewsPull
from layers.errors import UnavailableError


def _dig(doc: Any, path: str | None) -> Any:
    if not path:
        return doc
    for part in path.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _record_feature(rec: dict[str, Any], cfg: HttpPull) -> dict[str, Any]:
    lon, lat = rec.get(cfg.lon_field), rec.get(cfg.lat_field)
    geom = None
    if lon not in (None, "") and lat not in (None, ""):
        try:
            geom = {"type": "Point", "coordinates": [float(lon), float(lat)]}
        except (TypeError, ValueError):
            geom = None
    props = {k: v for k, v in rec.items() if k not in (cfg.lon_field, cfg.lat_field)}
    return {"type": "Feature", "properties": props, "geometry": geom}


def _fetch_paged(
    cfg: HttpPull | IndicatorPull | NewsPull,
    cursor: str | None,
    params: dict[str, Any],
    page_items: Callable[[Any], tuple[list[Any], list[Any]]],
) -> tuple[list[Any], str | None]:
    """Every page since `cursor`: the items `page_items` keeps of each, and the new cursor.

    `page_items(doc)` gives (items kept, the page's records); the records drive the cursor and
    paging. Pages follow a `next` link when the body has one, else page numbers until a short
    page.
    """
    out: list[Any] = []
    params = dict(params)
    if cfg.since_param and cursor:
        params[cfg.since_param] = cursor
    if cfg.page_size_param:
        params[cfg.page_size_param] = cfg.page_size
    url: str | None = cfg.url
    page = 1
    new_cursor = cursor
    with httpx.Client(timeout=cfg.timeout_s, headers=cfg.headers) as client:
        for _ in range(cfg.max_pages):
            if url is None:
                break
            first = url == cfg.url
            query = dict(params)
            if cfg.page_param and first:
                query[cfg.page_param] = page
            try:
                resp = client.get(url, params=query if first else None)
                resp.raise_for_status()
                doc = resp.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise UnavailableError(f"{cfg.name}: fetching {url} failed: {exc}") from exc
            items, records = page_items(doc)
            out.extend(items)
            if cfg.cursor_field:
                values = [
                    str(r[cfg.cursor_field])
                    for r in records
                    if isinstance(r, dict) and r.get(cfg.cursor_field)
                ]
                if values:
                    top = max(values)
                    new_cursor = top if new_cursor is None else max(new_cursor, top)
            nxt = _dig(doc, cfg.next_field) if cfg.next_field and isinstance(doc, dict) else None
            if isinstance(nxt, str) and nxt:
                url = nxt
                continue
            if not cfg.page_param or len(records) < cfg.page_size or not records:
                break
            page += 1
    return out, new_cursor


def _page_records(doc: Any, records_path: str | None) -> list[Any]:
    records = _dig(doc, records_path) if isinstance(doc, dict) else doc
    return records if isinstance(records, list) else []


def fetch_http(cfg: HttpPull, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Every page since `cursor`, as GeoJSON features, plus the new cursor value."""

    def page_items(doc: Any) -> tuple[list[Any], list[Any]]:
        if cfg.format == "geojson":
            features = list(doc.get("features", []) if isinstance(doc, dict) else [])
            return features, [f.get("properties") or {} for f in features]
        records = _page_records(doc, cfg.records_path)
        return [_record_feature(r, cfg) for r in records], records

    return _fetch_paged(cfg, cursor, {}, page_items)


def fetch_records(
    cfg: IndicatorPull | NewsPull, cursor: str | None
) -> tuple[list[Any], str | None]:
    """Every record since `cursor` (raw, malformed ones included), plus the new cursor value.

    Pages follow a `next` link when the body has one, else page numbers until a short page.
    """

    def page_items(doc: Any) -> tuple[list[Any], list[Any]]:
        records = _page_records(doc, cfg.records_path)
        return records, records

    return _fetch_paged(cfg, cursor, dict(cfg.params), page_items)


def write_records_spool(folder: Path, records: list[Any], meta: dict[str, Any]) -> Path:
    """Persist fetched records (JSON) before they are written, so nothing fetched is lost."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}.records.json"
    tmp = folder / (name + ".part")
    tmp.write_text(json.dumps({"records": records, "iocmap": meta}, ensure_ascii=False), "utf-8")
    final = folder / name
    tmp.rename(final)
    return final


def pending_records_spool(folder: Path) -> list[Path]:
    """Spooled record fetches not yet written, oldest first."""
    return sorted(folder.glob("*.records.json")) if folder.exists() else []


def write_spool(folder: Path, features: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Persist fetched features (GeoJSON) before importing them."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}_{uuid.uuid4().hex[:6]}.geojson"
    tmp = folder / (name + ".part")
    doc = {"type": "FeatureCollection", "features": features, "iocmap": meta}
    tmp.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    final = folder / name
    tmp.rename(final)
    return final


def pending_spool(folder: Path) -> list[Path]:
    """Spooled fetches not yet imported, oldest first."""
    if not folder.exists():
        return []
    return sorted(folder.glob("*.geojson"))


def spool_meta(path: Path) -> dict[str, Any]:
    """The metadata stored with a spool file (e.g. the cursor it advances to)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    meta = doc.get("iocmap", {})
    return meta if isinstance(meta, dict) else {}


def drop_files(folder: Path, patterns: list[str], settle_s: float) -> Iterator[Path]:
    """Files waiting in a drop folder (not in done/ or failed/, and no longer being written)."""
    if not folder.exists():
        return
    now = time.time()
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if not any(fnmatch.fnmatch(path.name.lower(), p.lower()) for p in patterns):
            continue
        if now - path.stat().st_mtime < settle_s:
            continue
        yield path


def collect_mqtt(cfg: Mqtt, spool_file: Path) -> int:
    """Subscribe for `listen_s` and append every message to a JSONL spool as it arrives."""
    import paho.mqtt.client as mqtt

    spool_file.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    connected: list[int] = []
    with spool_file.open("a", encoding="utf-8") as out:

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
            connected.append(int(getattr(rc, "value", rc)))
            client.subscribe(cfg.topic, qos=cfg.qos)

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            nonlocal count
            line = {"topic": msg.topic, "payload": msg.payload.decode("utf-8", "replace")}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            count += 1

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"iocmap-{cfg.name}-{uuid.uuid4().hex[:6]}",
            clean_session=cfg.client_id is None,
        )
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        client.on_connect = on_connect
        client.on_message = on_message
        try:
            client.connect(cfg.host, cfg.port, keepalive=30)
        except OSError as exc:
            raise UnavailableError(f"{cfg.name}: MQTT broker {cfg.host}:{cfg.port}: {exc}") from exc
        client.loop_start()
        deadline = time.monotonic() + cfg.listen_s
        while time.monotonic() < deadline and count < cfg.max_messages:
            time.sleep(0.05)
        client.loop_stop()
        client.disconnect()
    if not connected:
        raise UnavailableError(f"{cfg.name}: could not connect to MQTT {cfg.host}:{cfg.port}")
    return count


def mqtt_features(spool_file: Path) -> list[dict[str, Any]]:
    """Sensor readings (JSON payloads) from a JSONL spool as GeoJSON features."""
    features = []
    for line in spool_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        msg = json.loads(line)
        try:
            payload = json.loads(msg["payload"])
        except ValueError:
            payload = {"raw": msg["payload"]}
        if not isinstance(payload, dict):
            payload = {"value": payload}
        lon, lat = payload.pop("lon", None), payload.pop("lat", None)
        props = {"topic": msg["topic"], **payload}
        sensor = props.get("sensor_id") or msg["topic"].rsplit("/", 1)[-1]
        props["sensor_id"] = sensor
        props["reading_id"] = f"{sensor}@{props.get('ts', '')}"
        geom = (
            {"type": "Point", "coordinates": [float(lon), float(lat)]}
            if lon is not None and lat is not None
            else None
        )
        features.append({"type": "Feature", "properties": props, "geometry": geom})
    return features
