"""`iocmap export-map`: a standalone, offline briefing HTML from the seeded demo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from geo_api.cli import app as cli_app
from geo_api.cli.export import export_briefing
from layers.settings import Settings
from web_map.briefing import BriefingError, build_briefing_html, check_offline

SRC_ATTR = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=\s*[\"']?([^\"' >]+)", re.I)


def _assert_offline(page: str) -> None:
    for _tag, _attr, url in SRC_ATTR.findall(page):
        assert not re.match(r"(https?:)?//", url), url
    assert "cdn.jsdelivr" not in page and "cdnjs" not in page and "code.jquery" not in page
    for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", page):
        assert ref.startswith(("data:", "#")), ref


def test_write_briefing_is_offline(seeded: Engine, tmp_path: Path) -> None:
    """The file inlines Leaflet, draws the basemap and the layers, and fetches nothing."""
    out = tmp_path / "briefing.html"
    summary = export_briefing(seeded, ["hospitals", "cameras"], out)
    page = out.read_text(encoding="utf-8")
    _assert_offline(page)
    assert summary.layers["admin_communes"] == 130
    assert summary.layers["admin_province"] == 1
    assert summary.layers["hospitals"] > 100
    assert summary.layers["cameras"] == 51
    assert '<html lang="vi">' in page
    assert "Bản đồ giao ban" in page and "Bệnh viện và trạm y tế" in page
    assert "L.map(" in page and "leaflet" in page.lower()
    assert "<script src=" not in page


def test_briefing_caps_and_english(seeded: Engine, tmp_path: Path) -> None:
    """--max-features caps big layers (and says so); English uses the English titles."""
    out = tmp_path / "b.html"
    summary = export_briefing(seeded, ["schools"], out, lang="en", max_features=100)
    assert summary.layers["schools"] == 100
    assert "schools" in summary.truncated
    page = out.read_text(encoding="utf-8")
    assert '<html lang="en">' in page and "Briefing map" in page and "Schools" in page
    assert "showing the first 100 features only" in page


def test_check_offline_refuses_cdn() -> None:
    """A page that would load from a CDN is refused."""
    with pytest.raises(BriefingError):
        check_offline('<script src="https://cdn.jsdelivr.net/npm/leaflet.js"></script>')
    with pytest.raises(BriefingError):
        check_offline("<style>@font-face{src:url(https://fonts.gstatic.com/x.woff2)}</style>")
    check_offline("<script>var a = 'https://example.org';</script>")


def test_empty_briefing_renders() -> None:
    """With no layers at all the page still renders (framed on Nghệ An)."""
    page = build_briefing_html([], lang="vi", title="Thử")
    _assert_offline(page)
    assert "Thử" in page


def test_cli_export_map(
    seeded: Engine, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`iocmap export-map --layers … --out …` writes the file and reports the counts."""
    assert settings.database_url is not None
    monkeypatch.setenv("IOC_DATABASE_URL", settings.database_url)
    out = tmp_path / "briefing.html"
    result = CliRunner().invoke(
        cli_app, ["export-map", "--layers", "hospitals,tourism_sites", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "hospitals=" in result.output and "tourism_sites=" in result.output
    _assert_offline(out.read_text(encoding="utf-8"))
    bad = CliRunner().invoke(
        cli_app, ["export-map", "--layers", "no_such_layer", "--out", str(out)]
    )
    assert bad.exit_code == 1


@pytest.mark.browser
def test_briefing_displays_in_chromium(seeded: Engine, tmp_path: Path, browser: Any) -> None:
    """Opened from disk, the briefing draws its features without any network request."""
    out = tmp_path / "briefing.html"
    export_briefing(seeded, ["hospitals", "field_reports"], out)
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    page.wait_for_timeout(1500)
    assert page.evaluate("typeof L") == "object"
    assert page.locator("#briefing-panel").is_visible()
    assert "Phản ánh hiện trường" in page.locator("#briefing-panel").inner_text()
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    page.close()
