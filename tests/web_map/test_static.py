"""The built web map without a browser: served at /, cached assets, nothing fetched from outside."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from geo_api.main import create_app
from layers.settings import Settings

# Absolute URLs that may appear in the bundle as plain strings (XML namespaces, links in
# error messages, maplibre's URL-parsing base): none of them is ever fetched.
ALLOWED_URL_PREFIXES = (
    "http://www.w3.org/",
    "https://maplibre.org/",
    "https://maplibre.invalid/",
    "https://github.com/",
    "https://en.wikipedia.org/",
    "https://wiki.openstreetmap.org/",
    "https://deck.gl/docs/",
    "https://www.iana.org/assignments/",
    "https://feross.org/",
)
CDN_HOSTS = (
    "unpkg.com",
    "jsdelivr",
    "cdnjs",
    "googleapis.com",
    "gstatic.com",
    "api.mapbox.com",
    "api.maptiler.com",
    "tile.openstreetmap.org",
    "basemaps.cartocdn.com",
    "demotiles.maplibre.org",
)
URL_RE = re.compile(r"https?://[^\s\"'`)<>\\]*")


def _client(settings: Settings, dist: Path) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"web_dist_dir": dist})))


def test_index_served_with_hashed_bundle(engine: Engine, settings: Settings, dist: Path) -> None:
    """GET / is the built page (not cached), referencing hashed, minified JS and CSS."""
    with _client(settings, dist) as client:
        res = client.get("/")
        assert res.status_code == 200
        assert res.headers["content-type"].startswith("text/html")
        assert res.headers["cache-control"] == "no-cache"
        html = res.text
        assert '<html lang="vi">' in html
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
        styles = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html)
        assert len(scripts) == 1 and re.fullmatch(r"/assets/app-[A-Z0-9]+\.js", scripts[0])
        assert len(styles) == 1 and re.fullmatch(r"/assets/app-[A-Z0-9]+\.css", styles[0])
        for src in scripts + styles:
            asset = client.get(src)
            assert asset.status_code == 200
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert len(asset.content) > 1000
        js = client.get(scripts[0], headers={"Accept-Encoding": "gzip"})
        assert js.headers.get("content-encoding") == "gzip"
        assert "javascript" in js.headers["content-type"]
        # minified: a 2 MB bundle on a few thousand lines
        assert js.text.count("\n") < len(js.text) / 200


def test_bundle_is_split_and_chunks_cached(engine: Engine, settings: Settings, dist: Path) -> None:
    """The entry paints the basemap with maplibre alone; deck.gl and the panels are lazy chunks."""
    assets = dist / "assets"
    entry = next(assets.glob("app-*.js")).read_text(encoding="utf-8")
    chunks = list(assets.glob("chunk-*.js"))
    assert chunks
    assert "import(" in entry  # the app chunk is loaded dynamically
    everything = "".join(p.read_text(encoding="utf-8") for p in chunks)
    # deck.gl's overlay and the indicator panel live in chunks, not in the entry
    assert "deck.gl" not in entry.lower() and "deck.gl" in everything.lower()
    assert (
        "/api/indicators/dashboards/" not in entry and "/api/indicators/dashboards/" in everything
    )
    with _client(settings, dist) as client:
        for chunk in chunks[:3]:
            res = client.get(f"/assets/{chunk.name}")
            assert res.status_code == 200
            assert "javascript" in res.headers["content-type"]
            assert res.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_assets_are_sent_precompressed(engine: Engine, settings: Settings, dist: Path) -> None:
    """Scripts and styles go out as the build's gzip copies, byte for byte the same once decoded."""
    assets = dist / "assets"
    files = [next(assets.glob("app-*.js")), next(assets.glob("app-*.css"))]
    files.append(max(assets.glob("chunk-*.js"), key=lambda p: p.stat().st_size))
    with _client(settings, dist) as client:
        for path in files:
            packed = path.with_name(f"{path.name}.gz")
            assert packed.is_file(), packed
            res = client.get(f"/assets/{path.name}", headers={"Accept-Encoding": "gzip"})
            assert res.status_code == 200
            assert res.headers["content-encoding"] == "gzip"
            assert int(res.headers["content-length"]) == packed.stat().st_size
            assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert "accept-encoding" in res.headers["vary"].lower()
            kind = "css" if path.suffix == ".css" else "javascript"
            assert kind in res.headers["content-type"]
            assert res.content == path.read_bytes()
            # a client without gzip gets the file itself
            plain = client.get(f"/assets/{path.name}", headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers
            assert plain.content == path.read_bytes()


@pytest.mark.parametrize("prefix", ["maplibre-gl-worker", "mvt-worker"])
def test_workers_are_served_as_javascript(
    engine: Engine, settings: Settings, dist: Path, prefix: str
) -> None:
    """maplibre's and loaders.gl's workers ship next to the bundle, hashed, as JavaScript."""
    workers = list((dist / "assets").glob(f"{prefix}-*.js"))
    assert len(workers) == 1
    # the entry (maplibre) or a split chunk (deck.gl, loaders.gl) names it
    bundle = "".join(
        p.read_text(encoding="utf-8")
        for p in (dist / "assets").glob("*.js")
        if "worker-" not in p.name
    )
    assert f"/assets/{workers[0].name}" in bundle
    with _client(settings, dist) as client:
        res = client.get(f"/assets/{workers[0].name}")
        assert res.status_code == 200
        assert "javascript" in res.headers["content-type"]
        assert res.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_briefing_vendor_is_built(dist: Path) -> None:
    """Leaflet for the offline briefing export is part of the build (with its licence)."""
    vendor = dist / "vendor" / "leaflet"
    for name in ("leaflet.js", "leaflet.css", "images/layers.png", "LICENSE"):
        assert (vendor / name).exists(), name


def test_no_external_urls_in_page_or_bundle(dist: Path) -> None:
    """No CDN script, stylesheet, font or tile URL anywhere in the built files."""
    html = (dist / "index.html").read_text(encoding="utf-8")
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert not re.match(r"(https?:)?//", attr), attr
    for path in (dist / "assets").iterdir():
        if path.suffix not in {".js", ".css"}:
            continue
        text = path.read_text(encoding="utf-8")
        for host in CDN_HOSTS:
            assert host not in text, f"{path.name} mentions {host}"
        for url in URL_RE.findall(text):
            if url in {"http://", "https://"}:
                continue  # scheme tests such as /^https?:/
            assert url.startswith(ALLOWED_URL_PREFIXES), f"{path.name}: unexpected URL {url}"
        if path.suffix == ".css":
            # every url(...) is inline data, never a remote font or image
            for ref in re.findall(r"url\(([^)]*)\)", text):
                assert ref.strip("'\" ").startswith("data:"), ref
            assert "@font-face" not in text and "@import" not in text


def test_translation_file_has_both_languages() -> None:
    """One translation file: every Vietnamese key has an English twin, and the UI reads it."""
    web = Path(__file__).resolve().parents[2] / "web_map"
    strings = json.loads((web / "i18n.json").read_text(encoding="utf-8"))
    assert set(strings) == {"vi", "en"}
    assert len(strings["vi"]) > 150
    assert set(strings["vi"]) == set(strings["en"])
    assert all(v.strip() for lang in strings.values() for v in lang.values())
    assert "../i18n.json" in (web / "src" / "i18n.js").read_text(encoding="utf-8")
    # no hard-coded Vietnamese UI text outside the translation file (diacritics are a giveaway)
    viet = re.compile(r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđ]", re.I)
    for src in (web / "src").rglob("*.js"):
        code = "\n".join(
            line
            for line in src.read_text(encoding="utf-8").splitlines()
            if not line.strip().startswith("//")
        )
        offenders = [m for m in re.findall(r"'[^'\n]*'|`[^`\n]*`", code) if viet.search(m)]
        assert offenders == [], f"{src.name}: {offenders[:3]}"


def test_missing_build_page(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    """Without a build, / explains in Vietnamese and English how to build the map."""
    with _client(settings, tmp_path) as client:
        res = client.get("/")
        assert res.status_code == 503
        assert "npm ci" in res.text and "chưa được build" in res.text
