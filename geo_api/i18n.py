"""Server messages in the caller's language, from the web map's one catalogue (web_map/i18n.json).

The language is the `lang` cookie the page sets, else the first of Accept-Language, else
Vietnamese. Domain errors that carry an `i18n` key in their context are translated at the edge.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request

CATALOGUE = Path(__file__).resolve().parents[1] / "web_map" / "i18n.json"
LANGS = ("vi", "en")
# Context values that are codes get their own catalogue names in the message.
_NAMED = {"status": "value.", "current": "value.", "role": "value.", "action": "rep.step."}


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    """The whole catalogue, read once."""
    data: dict[str, dict[str, str]] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    return data


def request_lang(request: Request) -> str:
    """'vi' or 'en': the page's `lang` cookie, else Accept-Language, else Vietnamese."""
    cookie = request.cookies.get("lang")
    if cookie in LANGS:
        return cookie
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGS:
            return code
    return "vi"


def t(lang: str, key: str, **values: Any) -> str:
    """Translate a key (English falls back to Vietnamese, then to the key)."""
    data = catalogue()
    text = data.get(lang, {}).get(key) or data["vi"].get(key) or key
    for name, value in values.items():
        prefix = _NAMED.get(name)
        shown = t(lang, prefix + str(value)) if prefix else str(value)
        text = text.replace("{" + name + "}", shown)
    return text
