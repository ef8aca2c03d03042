"""One language at a time, from the server too (issue 17, item 7).

Walks the error paths a person meets (not found, refused, malformed input, request validation,
sign-in, imports and their notes and rejects) in Vietnamese and in English, and fails on English
text in a Vietnamese answer and on Vietnamese text in an English one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from geo_api import i18n

Headers = Callable[..., dict[str, str]]
CATALOGUE = json.loads(
    (Path(__file__).resolve().parents[2] / "web_map" / "i18n.json").read_text(encoding="utf-8")
)

# Quoted values (names, slugs, typed input) are the caller's own words, in any language;
# command-line flags (--source-layer) are names too.
QUOTED = re.compile(r"“[^”]*”|'[^']*'|\"[^\"]*\"|\([^)]*\bEPSG[^)]*\)|--[a-z][a-z-]*|vĩ độ/kinh độ")
# Words of an English sentence that no Vietnamese message uses.
ENGLISH = re.compile(
    r"\b(the|is|are|must|does|not|exist|should|invalid|required|between|layer|field|value|"
    r"number|only|cannot|unknown|sign|got|has|of|at|least|most|file|rows?|columns?|"
    r"too|many|try|again|wrong|password|found|Not|Found)\b"
)
VIETNAMESE = re.compile(
    r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđàáâãèéêìíòóôõùúăơưý]", re.I
)


def wrong_language(text: str, lang: str) -> list[str]:
    """Words of the other language in a message meant for `lang` (quoted values left out)."""
    bare = QUOTED.sub(" ", text)
    if lang == "vi":
        return ENGLISH.findall(bare)
    return VIETNAMESE.findall(bare)


def _csv(rows: list[str]) -> bytes:
    return ("\n".join(rows) + "\n").encode("utf-8")


# (name, role or None, method, url, request kwargs)
CASES: list[tuple[str, str | None, str, str, dict[str, Any]]] = [
    ("layer_not_found", "admin", "GET", "/api/layers/khong_co/features", {}),
    ("bbox", "admin", "GET", "/api/layers/hospitals/features?bbox=1,2,3", {}),
    ("limit_validation", "admin", "GET", "/api/layers/hospitals/features?limit=0", {}),
    ("sortby", "admin", "GET", "/api/layers/hospitals/features?sortby=khong_co", {}),
    ("cql", "admin", "GET", "/ogc/collections/hospitals/items?filter=khong_co%3D1", {}),
    ("collection", "admin", "GET", "/ogc/collections/khong_co/items", {}),
    # values named like t()'s own parameters (key, lang) fill their messages too
    ("query_param", "admin", "GET", "/ogc/collections/hospitals/items?mau_sac=do", {}),
    ("filter_lang", "admin", "GET",
     "/ogc/collections/hospitals/items?filter-lang=khac&filter=name%3D%27a%27", {}),
    ("zoom", "admin", "GET", "/tiles/hospitals/40/1/1.mvt", {}),
    ("radius_gt", "admin", "POST", "/api/query/radius",
     {"json": {"layer": "hospitals", "lon": 105.68, "lat": 18.67, "radius_m": -5}}),
    ("missing", "admin", "POST", "/api/query/radius",
     {"json": {"layer": "hospitals", "radius_m": 500}}),
    ("extra_field", "admin", "POST", "/api/query/radius",
     {"json": {"layer": "hospitals", "lon": 105.68, "lat": 18.67, "radius_m": 5, "x": 1}}),
    ("literal", "admin", "POST", "/api/query/radius?format=shp",
     {"json": {"layer": "hospitals", "lon": 105.68, "lat": 18.67, "radius_m": 500}}),
    ("nul_in_where", "admin", "POST", "/api/query/nearest",
     {"json": {"layer": "hospitals", "lon": 105.6, "lat": 18.7, "where": {"name": "a\x00b"}}}),
    ("search_empty", "admin", "GET", "/api/search?q=%20", {}),
    ("indicator_grain", "admin", "GET", "/api/indicators/hcc_received?grain=day", {}),
    ("report_missing", "admin", "GET", "/api/reports/PA-2020-000001", {}),
    ("report_short", None, "POST", "/api/reports",
     {"data": {"category": "traffic", "description": "ab", "lon": "105.68", "lat": "18.67"}}),
    ("report_outside", None, "POST", "/api/reports",
     {"data": {"category": "traffic", "description": "Đèn hỏng", "lon": "2.35", "lat": "48.85"}}),
    ("report_category", None, "POST", "/api/reports",
     {"data": {"category": "khong_co", "description": "Đèn hỏng", "lon": "105.68", "lat": "18.67"}}),
    ("sign_in", None, "POST", "/api/auth/login",
     {"json": {"username": "khong_co_ai", "password": "sai mat khau"}}),
    ("signed_out", None, "GET", "/api/alerts", {}),
    ("role", "citizen", "GET", "/api/imports", {}),
    ("no_route", None, "GET", "/api/khong-co-duong-nay", {}),
    ("import_type", "gis_staff", "POST", "/api/imports",
     {"data": {"layer": "j_i18n", "dry_run": "true"},
      "files": {"file": ("ban-ve.dwg", b"AC1032", "application/octet-stream")}}),
    ("import_columns", "gis_staff", "POST", "/api/imports",
     {"data": {"layer": "j_i18n", "dry_run": "true"},
      "files": {"file": ("a.csv", _csv(["ten,ghi_chu", "A,B"]), "text/csv")}}),
    ("import_mode", "gis_staff", "POST", "/api/imports",
     {"data": {"layer": "j_i18n", "mode": "xoa_het", "dry_run": "true"},
      "files": {"file": ("a.csv", _csv(["ten,lon,lat", "A,105.7,18.7"]), "text/csv")}}),
    ("import_slug", "gis_staff", "POST", "/api/imports",
     {"data": {"layer": "Lớp Mới", "dry_run": "true"},
      "files": {"file": ("a.csv", _csv(["ten,lon,lat", "A,105.7,18.7"]), "text/csv")}}),
]  # fmt: skip


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize(("name", "role", "method", "url", "kw"), CASES, ids=[c[0] for c in CASES])
def test_error_answers_speak_the_callers_language(
    client: Any,
    auth_headers: Headers,
    lang: str,
    name: str,
    role: str | None,
    method: str,
    url: str,
    kw: dict[str, Any],
) -> None:
    headers = {"Accept-Language": lang, **(auth_headers(role) if role else {})}
    res = client.request(method, url, headers=headers, **kw)
    assert 400 <= res.status_code < 500, (res.status_code, res.text[:300])
    body = res.json()
    details = [body["detail"], *body.get("errors", [])]
    for text in details:
        assert wrong_language(text, lang) == [], (lang, text)
    if lang == "vi":
        assert VIETNAMESE.search(body["detail"]), body["detail"]
        # the same request in English says it in English: translated, not merely unchanged
        en = client.request(method, url, headers={**headers, "Accept-Language": "en"}, **kw)
        assert en.json()["detail"] != body["detail"]


def test_the_lang_cookie_wins_over_accept_language(client: Any) -> None:
    client.cookies.set("lang", "vi")
    try:
        res = client.get("/api/layers/khong_co/features", headers={"Accept-Language": "en"})
    finally:
        client.cookies.delete("lang")
    assert res.status_code == 404 and res.json()["detail"] == "Không có lớp “khong_co”"


def test_validation_names_the_field_in_words(client: Any, auth_headers: Headers) -> None:
    body = {"layer": "hospitals", "lon": 105.68, "lat": 18.67, "radius_m": "xa"}
    for lang, label in (("vi", "Bán kính (m)"), ("en", "Radius (m)")):
        res = client.post(
            "/api/query/radius",
            json=body,
            headers={"Accept-Language": lang, **auth_headers("admin")},
        )
        assert res.status_code == 400
        assert res.json()["detail"].startswith(f"{label}: "), res.json()
        assert res.json()["detail"] != f"{label}: ", res.json()
        # programs still get the raw location
        assert res.json()["fields"] == ["body.radius_m"]


def test_import_notes_and_rejects_come_in_the_callers_language(
    client: Any, auth_headers: Headers
) -> None:
    """The notes of a dry run and of a finished import, and the rejects' details."""
    from contextlib import suppress

    from layers.errors import NotFoundError
    from layers.features.registry import delete_layer

    csv = _csv(
        ["ten_tram;lon;lat", "Trạm A;105,70;18,68", "Trạm B;abc;18,70", "Trạm C;105,72;18,66"]
    )
    csv = csv.replace(b",", b".")  # decimal points; the delimiter is ';'
    files = {"file": ("tram.csv", csv, "text/csv")}
    seen: dict[str, list[str]] = {}
    try:
        for lang in ("vi", "en"):
            headers = {"Accept-Language": lang, **auth_headers("gis_staff")}
            dry = client.post(
                "/api/imports",
                data={"layer": "j_i18n_tram", "dry_run": "true"},
                files=files,
                headers=headers,
            )
            assert dry.status_code == 200, dry.text[:300]
            report = dry.json()
            notes = report["notes"]
            assert notes, report
            for text in [*notes, *(ex["detail"] for ex in report["reject_examples"])]:
                assert wrong_language(text, lang) == [], (lang, text)
            seen[lang] = notes
        assert any("Dấu phân cách CSV" in n for n in seen["vi"]), seen["vi"]
        assert any("Tọa độ lấy từ cột" in n for n in seen["vi"]), seen["vi"]
        assert any("CSV delimiter" in n for n in seen["en"]), seen["en"]
        # a real import: its report and its rejects, read back in either language
        started = client.post(
            "/api/imports",
            data={"layer": "j_i18n_tram"},
            files=files,
            headers=auth_headers("gis_staff"),
        )
        assert started.status_code == 202, started.text[:300]
        batch = started.json()["id"]
        for lang in ("vi", "en"):
            headers = {"Accept-Language": lang, **auth_headers("gis_staff")}
            job = client.get(f"/api/imports/{batch}", headers=headers).json()
            assert job["status"] == "succeeded", job
            for text in job["report"]["notes"]:
                assert wrong_language(text, lang) == [], (lang, text)
            rejects = client.get(f"/api/imports/{batch}/rejects", headers=headers).json()
            assert [r["row"] for r in rejects] == [2]
            assert rejects[0]["field"] == "lon" and rejects[0]["value"] == "abc"
            detail = rejects[0]["detail"]
            assert wrong_language(detail, lang) == [], (lang, detail)
            expected = i18n.t(lang, "imp.detail.not_number", field="lon", value="'abc'")
            assert detail == expected, detail
    finally:
        from sqlalchemy import Engine

        engine: Engine = client.app.state.engine
        with engine.begin() as conn, suppress(NotFoundError):
            delete_layer(conn, "j_i18n_tram")


def test_every_server_key_has_both_languages_and_the_same_placeholders() -> None:
    server = [k for k in CATALOGUE["vi"] if k.startswith(("err.", "val.", "field.", "imp."))]
    assert len(server) > 400
    for key in server:
        vi, en = CATALOGUE["vi"][key], CATALOGUE["en"][key]
        assert set(re.findall(r"\{\w+\}", vi)) == set(re.findall(r"\{\w+\}", en)), key
        if key.startswith(("err.", "val.", "imp.note.", "imp.detail.")):
            # the text around the placeholders
            vi_words, en_words = re.sub(r"\{\w+\}", " ", vi), re.sub(r"\{\w+\}", " ", en)
            assert wrong_language(vi_words, "vi") == [], (key, vi)
            assert not VIETNAMESE.search(QUOTED.sub(" ", en_words)) or "vĩ độ" in en, (key, en)


def test_every_error_key_raised_in_code_is_in_the_catalogue() -> None:
    root = Path(__file__).resolve().parents[2]
    keys: set[str] = set()
    for pkg in ("geo_api", "layers", "analytics", "ingest", "vision"):
        for path in (root / pkg).rglob("*.py"):
            keys |= set(re.findall(r'i18n="([a-z0-9_.]+)"', path.read_text(encoding="utf-8")))
    missing = sorted(k for k in keys if k not in CATALOGUE["vi"] or k not in CATALOGUE["en"])
    assert missing == []
    assert len(keys) > 200


def test_a_failed_import_job_says_why_in_the_callers_language(
    client: Any, auth_headers: Headers
) -> None:
    files = {"file": ("cot.csv", _csv(["ten,ghi_chu", "A,B"]), "text/csv")}
    started = client.post(
        "/api/imports", data={"layer": "j_i18n_fail"}, files=files, headers=auth_headers("admin")
    )
    assert started.status_code == 202, started.text[:300]
    batch = started.json()["id"]
    said = {}
    for lang in ("vi", "en"):
        job = client.get(
            f"/api/imports/{batch}", headers={"Accept-Language": lang, **auth_headers("admin")}
        ).json()
        assert job["status"] == "failed" and len(job["errors"]) == 1, job
        said[lang] = job["errors"][0]
        assert wrong_language(said[lang], lang) == [], (lang, said[lang])
    assert said["vi"].startswith("Tệp cot.csv: không tìm thấy cột tọa độ"), said["vi"]
    assert said["en"].startswith("cot.csv: no coordinate columns found"), said["en"]


def test_a_failed_raster_import_job_says_why_in_the_callers_language(
    client: Any, auth_headers: Headers
) -> None:
    """A raster import fails in its background job; the stored reason is served in vi and en."""
    files = {"file": ("hong.tif", b"this is not a GeoTIFF at all", "image/tiff")}
    started = client.post(
        "/api/imports", data={"layer": "j_i18n_raster"}, files=files, headers=auth_headers("admin")
    )
    assert started.status_code == 202, started.text[:300]
    batch = started.json()["id"]
    said = {}
    for lang in ("vi", "en"):
        job = client.get(
            f"/api/imports/{batch}", headers={"Accept-Language": lang, **auth_headers("admin")}
        ).json()
        assert job["status"] == "failed" and len(job["errors"]) == 1, job
        said[lang] = job["errors"][0]["error"]
    assert said["vi"].startswith("Tệp hong.tif: không phải ảnh raster đọc được"), said["vi"]
    assert said["en"].startswith("hong.tif: "), said["en"]
    assert said["vi"] != said["en"]
