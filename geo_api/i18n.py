"""Server messages in the caller's language, from the web map's one catalogue (web_map/i18n.json).

The language is the `lang` cookie the page sets, else the first of Accept-Language, else
Vietnamese. Domain errors that carry an `i18n` key in their context are translated at the edge;
so are request-validation errors (`validation_problem`) and the English sentences an import
stores in its report and rejects (`stored`), which are read back into their key and values.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request

CATALOGUE = Path(__file__).resolve().parents[1] / "web_map" / "i18n.json"
LANGS = ("vi", "en")
# Context values that are codes get their own catalogue names in the message.
_NAMED = {
    "status": "value.",
    "current": "value.",
    "to": "value.",
    "role": "value.",
    "action": "rep.step.",
    "kind": "value.",
    "param": "field.",
    "found": "geom.",
    "target": "geom.",
    "frequency": "ind.grain.",
    "grain": "ind.grain.",
}
# Where a request-validation error sits; not a field name.
_LOC_ROOTS = frozenset({"body", "query", "path", "header", "cookie", "form"})


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


def has(key: str) -> bool:
    """Whether the catalogue names this key."""
    return key in catalogue()["vi"]


def t(lang: str, key: str, /, **values: Any) -> str:
    """Translate a key (English falls back to Vietnamese, then to the key).

    Positional-only, so a value may be called `key` or `lang` (a query parameter's name).
    """
    data = catalogue()
    text = data.get(lang, {}).get(key) or data["vi"].get(key) or key
    for name, value in values.items():
        prefix = _NAMED.get(name)
        # a code with a catalogue name is shown by that name, any other value as it is
        shown = t(lang, prefix + str(value)) if prefix and has(prefix + str(value)) else str(value)
        text = text.replace("{" + name + "}", shown)
    return text


@functools.cache
def _patterns(prefix: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The English texts of the keys under `prefix`, as patterns that read back their values."""
    out = []
    for key, text in catalogue()["en"].items():
        if not key.startswith(prefix):
            continue
        seen: set[str] = set()
        parts = []
        for piece in re.split(r"(\{\w+\})", text):
            name = piece[1:-1] if re.fullmatch(r"\{\w+\}", piece) else None
            if name is None:
                parts.append(re.escape(piece))
            elif name in seen:
                parts.append(f"(?P={name})")
            else:
                seen.add(name)
                parts.append(f"(?P<{name}>.*?)")
        out.append((key, re.compile("".join(parts), re.S)))
    # the longest (most specific) texts first
    out.sort(key=lambda kp: -len(kp[1].pattern))
    return tuple(out)


def stored(lang: str, text: str, prefix: str) -> str:
    """A stored English sentence (an import note or reject detail) in `lang`.

    The sentence is matched against the English texts of the catalogue keys under `prefix`,
    then written from the same key in `lang`; a sentence no key matches is returned as it is.
    """
    if lang == "en" or not text:
        return text
    for key, pattern in _patterns(prefix):
        m = pattern.fullmatch(text)
        if m is not None:
            # a value may itself be such a sentence ("{msg} (despite the .cpg)")
            return t(lang, key, **{k: stored(lang, v, prefix) for k, v in m.groupdict().items()})
    return text


def stored_all(lang: str, texts: Iterable[Any], prefix: str) -> list[Any]:
    """`stored` over a list (non-strings are kept)."""
    return [stored(lang, x, prefix) if isinstance(x, str) else x for x in texts]


def field_label(lang: str, loc: Iterable[Any]) -> str:
    """The field a validation error names, in words ("Bán kính (m)"), from its location."""
    names = [str(p) for p in loc if isinstance(p, str) and p not in _LOC_ROOTS]
    if not names:
        return ""
    labels = [t(lang, f"field.{n}") if has(f"field.{n}") else n for n in names]
    return " › ".join(labels)


def validation_problem(lang: str, err: Mapping[str, Any]) -> str:
    """One request-validation error (pydantic's dict) as "field: problem" in `lang`."""
    kind = str(err.get("type", ""))
    ctx = {k: v for k, v in dict(err.get("ctx") or {}).items() if k != "error"}
    if "expected" in ctx:
        # pydantic writes "'a', 'b' or 'c'"; the "or" is in the caller's language
        ctx["expected"] = str(ctx["expected"]).replace(" or ", f" {t(lang, 'val.or')} ")
    key = f"val.{kind}" if has(f"val.{kind}") else "val.invalid"
    problem = t(lang, key, **ctx)
    field = field_label(lang, err.get("loc", ()))
    if not field:
        # the request as a whole (a rule across fields): the problem is the sentence
        return problem[:1].upper() + problem[1:]
    return t(lang, "val.problem", field=field, problem=problem)
