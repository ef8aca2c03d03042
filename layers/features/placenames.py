"""Vietnamese place-name matching: find which commune or ward a piece of text talks about.

Pure: build a `Gazetteer` from (code, name, kind) tuples, then `match(text)`.

How a text is read:
- Folding: NFD, combining marks stripped, đ→d, lower case. Names are matched as whole words
  of the folded text (so "Vinh" never matches inside "Vinhomes"), and the words of a name must
  be separated by white space only ("Hưng Nguyên, Nam Đàn" is two places, not "Hưng Nguyên Nam").
- Diacritics disambiguate when the text has them: a written syllable with marks must carry the
  name's marks (tone placement "Hòa"/"Hoà" does not matter); an unmarked syllable fits any.
- Case is ignored, except as a guard against common words: in text that uses capitals at all
  (not all lower, not all upper case) a name written in lower case ("phúc lộc", "anh Sơn") is
  not a place unless an administrative prefix names it ("xã phúc lộc"); nor is a name right
  after a capitalised family or middle name ("Nguyễn Văn Hiến", "Lê Thị Kim Liên").
- Prefixes: phường, xã, P., X., TP., TX., TT., thị xã, thị trấn, thành phố. Phường/xã also
  pick the kind when the same name is both a ward and a commune.
- Part of a name after a prefix ("TP Vinh", "thành phố Vinh") that is no unit's own name but
  is held by several units' names (the five wards that carry the former city's name) is a
  mention of all of them, so ambiguous; only in text that uses capitals, where the name
  visibly ends, and with marks taken as written when the text has any ("Vinh" is not "Vĩnh").
- Overlaps: the reading that covers the most words wins, then the one with fewer, longer names
  ("Hưng Nguyên Nam" over "Hưng Nguyên"; "Hưng Nguyên Nam Đàn" is Hưng Nguyên + Nam Đàn).
- Result: "matched" when every mention fits one and the same unit; "ambiguous" (with the
  candidate codes) when a mention fits several units or the text names several different
  ones; "none" otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

MatchStatus = Literal["matched", "ambiguous", "none"]

# Vietnamese tone marks (combining): grave, acute, tilde, hook above, dot below.
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")
_COMBINING = re.compile(r"[\u0300-\u036f]")
_WORD = re.compile(r"\w+")
_PREFIX_GAP = re.compile(r"[\s.:]*")

# Folded prefix word sequences -> the kind they name ("" when they do not pin one down).
PREFIXES: dict[tuple[str, ...], str] = {
    ("phuong",): "Phường",
    ("p",): "Phường",
    ("xa",): "Xã",
    ("x",): "Xã",
    ("tp",): "",
    ("tx",): "",
    ("tt",): "",
    ("thi", "xa"): "",
    ("thi", "tran"): "",
    ("thanh", "pho"): "",
}

# Names that are also something else every reader knows, so they count only after a prefix:
# "Tiền Phong" is a national newspaper (báo Tiền Phong), cited as a source in many items.
DEFAULT_PREFIX_ONLY: frozenset[str] = frozenset({"tien phong"})

# Capitalised words that, right before a name, make it part of a person's name ("ông Nguyễn
# Văn Hiến", "Lê Thị Kim Liên"): common family names and the commonest middle names.
PERSON_NAME_WORDS: frozenset[str] = frozenset(
    {
        "Nguyễn",
        "Trần",
        "Lê",
        "Phạm",
        "Hoàng",
        "Huỳnh",
        "Phan",
        "Vũ",
        "Võ",
        "Đặng",
        "Bùi",
        "Đỗ",
        "Hồ",
        "Ngô",
        "Dương",
        "Lý",
        "Đinh",
        "Đào",
        "Trương",
        "Lương",
        "Cao",
        "Chu",
        "Lưu",
        "Tạ",
        "Tô",
        "Đoàn",
        "Vương",
        "Trịnh",
        "Quách",
        "Văn",
        "Thị",
        "Đức",
        "Hữu",
        "Đình",
    }
)


def strip_marks(text: str) -> str:
    """Text without accents or tone marks (NFD, combining marks stripped, đ→d), case kept."""
    s = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in s if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Fold for matching: marks stripped (`strip_marks`), lower case."""
    return strip_marks(text).lower()


def _build_table() -> dict[int, str]:
    # One folded char per precomposed Latin char: folding keeps offsets, so spans map back 1:1.
    table: dict[int, str] = {}
    for cp in [*range(0x41, 0x250), *range(0x1E00, 0x1F00)]:
        ch = chr(cp)
        f = fold(ch)
        if len(f) == 1 and f != ch:
            table[cp] = f
    return table


_TABLE = _build_table()


def _is_person_word(word: str) -> bool:
    """Whether a written word is one of PERSON_NAME_WORDS (marks compared when it has any)."""
    skeleton, tone, marked = _syllable_sig(word)
    if marked:
        return (skeleton, tone) in _PERSON_SIGS
    return fold(word) in _PERSON_FOLDED


@lru_cache(maxsize=65536)
def _syllable_sig(word: str) -> tuple[str, str, bool]:
    """(letters without tone, tone mark, has any mark) of one syllable, lower case."""
    nfd = unicodedata.normalize("NFD", word.lower())
    tone = "".join(c for c in nfd if c in _TONES)
    skeleton = unicodedata.normalize("NFC", "".join(c for c in nfd if c not in _TONES))
    marked = bool(tone) or skeleton != fold(skeleton)
    return skeleton, tone, marked


_PERSON_SIGS = frozenset(_syllable_sig(w)[:2] for w in PERSON_NAME_WORDS)
_PERSON_FOLDED = frozenset(fold(w) for w in PERSON_NAME_WORDS)


@dataclass(frozen=True)
class Unit:
    """One place the gazetteer knows."""

    code: str
    name: str
    kind: str
    words: tuple[str, ...]
    sigs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Mention:
    """One place name found in the text, with the units it fits."""

    start: int
    end: int
    text: str
    codes: tuple[str, ...]
    prefixed: bool


@dataclass(frozen=True)
class PlaceMatch:
    """Where a text is: matched (one unit), ambiguous (candidates) or none.

    `candidates` lists the codes considered: the one code when matched, several when
    ambiguous, none when nothing matched. `span` is the (start, end) offsets in the text of the
    first mention, `mentions` all of them.
    """

    status: MatchStatus
    code: str | None = None
    name: str | None = None
    candidates: list[str] = field(default_factory=list)
    span: tuple[int, int] | None = None
    mentions: tuple[Mention, ...] = ()

    @property
    def matched_text(self) -> str | None:
        """The text of the first mention."""
        return self.mentions[0].text if self.mentions else None


class Gazetteer:
    """Place names of communes and wards, indexed by their folded words."""

    def __init__(self, units: Iterable[Unit], prefix_only: Iterable[str] = DEFAULT_PREFIX_ONLY):
        """Index units by the first folded word of their name."""
        self.units: dict[str, Unit] = {}
        self._by_first: dict[str, dict[tuple[str, ...], list[Unit]]] = {}
        self._prefix_only = frozenset(fold(n) for n in prefix_only)
        self._max_prefix = max(len(p) for p in PREFIXES)
        for u in units:
            if u.code in self.units:
                raise ValueError(f"gazetteer: duplicate unit code {u.code!r}")
            if not u.words:
                raise ValueError(f"gazetteer: unit {u.code!r} has an empty name")
            self.units[u.code] = u
            self._by_first.setdefault(u.words[0], {}).setdefault(u.words, []).append(u)
        # longest names first, so the first fitting one at a position is the longest
        self._trie = {
            first: sorted(by_words.items(), key=lambda kv: -len(kv[0]))
            for first, by_words in self._by_first.items()
        }
        # Part of a name -> the units whose names hold it ("Vinh": the five wards that carry
        # the former city's name), for a prefixed name that is no unit's ("TP Vinh").
        self._parts: dict[tuple[str, ...], list[tuple[Unit, int]]] = {}
        for u in self.units.values():
            for a in range(len(u.words)):
                for b in range(a + 1, len(u.words) + 1):
                    if b - a < len(u.words):
                        self._parts.setdefault(u.words[a:b], []).append((u, a))
        self._max_part = max((len(p) for p in self._parts), default=0)
        self._part_first = frozenset(p[0] for p in self._parts)

    @classmethod
    def from_units(
        cls,
        units: Sequence[tuple[str, str, str]],
        prefix_only: Iterable[str] = DEFAULT_PREFIX_ONLY,
    ) -> Gazetteer:
        """Build from (code, name, kind) tuples, e.g. ("16681", "Thành Vinh", "Phường")."""
        built = []
        for i, row in enumerate(units):
            if len(row) != 3:
                raise ValueError(f"gazetteer: unit #{i} must be (code, name, kind), got {row!r}")
            code, name, kind = (str(x).strip() for x in row)
            name = unicodedata.normalize("NFC", name)
            raw_words = _WORD.findall(name)
            if not code or not raw_words:
                raise ValueError(f"gazetteer: unit #{i} needs a code and a name, got {row!r}")
            built.append(
                Unit(
                    code=code,
                    name=name,
                    kind=kind,
                    words=tuple(fold(w) for w in raw_words),
                    sigs=tuple(_syllable_sig(w)[:2] for w in raw_words),
                )
            )
        return cls(built, prefix_only)

    def __len__(self) -> int:
        """Number of units."""
        return len(self.units)

    def collisions(self) -> dict[str, list[str]]:
        """Folded names that several units share: {folded name: [codes]}."""
        return {
            " ".join(words): [u.code for u in us]
            for by_words in self._by_first.values()
            for words, us in by_words.items()
            if len(us) > 1
        }

    def match(self, text: str) -> PlaceMatch:
        """Which unit the text names: matched, ambiguous (with candidates) or none."""
        mentions = self.mentions(text)
        if not mentions:
            return PlaceMatch(status="none")
        first = mentions[0]
        span = (first.start, first.end)
        common = set(first.codes)
        for m in mentions[1:]:
            common &= set(m.codes)
        if len(common) == 1:
            code = next(iter(common))
            return PlaceMatch(
                status="matched",
                code=code,
                name=self.units[code].name,
                candidates=[code],
                span=span,
                mentions=tuple(mentions),
            )
        seen: dict[str, None] = {}
        for m in mentions:
            for c in m.codes:
                seen.setdefault(c, None)
        return PlaceMatch(
            status="ambiguous", candidates=list(seen), span=span, mentions=tuple(mentions)
        )

    def match_many(self, texts: Iterable[str]) -> list[PlaceMatch]:
        """`match` over many texts."""
        return [self.match(t) for t in texts]

    def mentions(self, text: str) -> list[Mention]:
        """Every place name in the text, in order, after resolving overlaps."""
        folded, orig = _fold_with_offsets(text)
        spans = [(m.start(), m.end()) for m in _WORD.finditer(folded)]
        words = [folded[a:b] for a, b in spans]
        n = len(words)
        if n == 0:
            return []
        lower = text.lower()
        cased = text != lower and text != text.upper()
        accented = lower != folded  # diacritics or đ somewhere in the text

        def gap_ok(i: int) -> bool:
            # words i and i+1 are separated by white space only
            return folded[spans[i][1] : spans[i + 1][0]].isspace()

        def original(i: int, j: int) -> tuple[int, int]:
            # offsets in `text` of words i..j-1 (trailing combining marks included)
            a = orig[spans[i][0]]
            b = orig[spans[j - 1][1] - 1] + 1
            while b < len(text) and unicodedata.combining(text[b]):
                b += 1
            return a, b

        def prefix_before(i: int) -> str | None:
            for k in range(1, self._max_prefix + 1):
                if i - k < 0:
                    break
                p = tuple(words[i - k : i])
                if p not in PREFIXES:
                    continue
                if all(gap_ok(x) for x in range(i - k, i - 1)) and _PREFIX_GAP.fullmatch(
                    folded[spans[i - 1][1] : spans[i][0]]
                ):
                    return PREFIXES[p]
            return None

        def partial(i: int) -> tuple[int, tuple[str, ...], bool] | None:
            # A prefixed, capitalised name that no unit has but several units' names hold:
            # ambiguous between them. Only where the proper noun visibly ends (the next word is
            # not capitalised), so "xã Cửa Tùng" is not taken for part of "Cửa Lò".
            for k in range(min(self._max_part, n - i), 0, -1):
                if not all(gap_ok(x) for x in range(i, i + k - 1)):
                    continue
                holders = self._parts.get(tuple(words[i : i + k]))
                if not holders or len(holders) < 2:
                    continue
                raw = [text[slice(*original(x, x + 1))] for x in range(i, i + k)]
                if not all(r[:1].isupper() for r in raw):
                    continue
                # text written with marks: an unmarked word is meant as written ("Vinh" is
                # not "Vĩnh"); without marks anywhere, it fits any
                sigs = [_syllable_sig(r)[:2] for r in raw]
                codes = sorted(
                    {
                        u.code
                        for u, off in holders
                        if (list(u.sigs[off : off + k]) == sigs)
                        or (not accented and _marks_fit(raw, u, off))
                    }
                )
                if len(codes) < 2:
                    continue
                if i + k < n and gap_ok(i + k - 1):
                    nxt = text[slice(*original(i + k, i + k + 1))]
                    if nxt[:1].isupper():
                        continue
                return k, tuple(codes), True
            return None

        # candidates[i]: (length in words, fitting units, prefixed) for names starting at word i
        cands: list[list[tuple[int, tuple[str, ...], bool]]] = [[] for _ in range(n)]
        for i, w in enumerate(words):
            entries = self._trie.get(w, [])
            if not entries and w not in self._part_first:
                continue
            looked_up = False
            prefix: str | None = None
            for name_words, units in entries:
                k = len(name_words)
                if i + k > n or tuple(words[i : i + k]) != name_words:
                    continue
                if not all(gap_ok(x) for x in range(i, i + k - 1)):
                    continue
                if not looked_up:
                    prefix, looked_up = prefix_before(i), True
                prefixed = prefix is not None
                if not prefixed and " ".join(name_words) in self._prefix_only:
                    continue
                raw = [text[slice(*original(x, x + 1))] for x in range(i, i + k)]
                if cased and not prefixed and not all(r[:1].isupper() for r in raw):
                    continue
                if cased and not prefixed and i > 0 and gap_ok(i - 1):
                    before = text[slice(*original(i - 1, i))]
                    if before[:1].isupper() and _is_person_word(before):
                        continue
                fits = [u for u in units if _marks_fit(raw, u)]
                if prefix and len(fits) > 1:
                    fits = [u for u in fits if u.kind == prefix] or fits
                if fits:
                    cands[i].append((k, tuple(u.code for u in fits), prefixed))
            if (
                not cands[i]
                and cased
                and w in self._part_first
                and text[orig[spans[i][0]]].isupper()
            ):
                if not looked_up:
                    prefix, looked_up = prefix_before(i), True
                part = partial(i) if prefix is not None else None
                if part:
                    cands[i].append(part)
        if not any(cands):
            return []
        # best[i]: (words covered, -mentions) over words i.., and the choice made at i
        best: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        choice: list[tuple[int, tuple[str, ...], bool] | None] = [None] * (n + 1)
        for i in range(n - 1, -1, -1):
            best[i], choice[i] = best[i + 1], None
            for cand in cands[i]:
                k = cand[0]
                score = (best[i + k][0] + k, best[i + k][1] - 1)
                # ties: a name starting here beats skipping the word (leftmost wins)
                if score > best[i] or (score == best[i] and choice[i] is None):
                    best[i], choice[i] = score, cand
        out = []
        i = 0
        while i < n:
            c = choice[i]
            if c is None:
                i += 1
                continue
            k, codes, prefixed = c
            a, b = original(i, i + k)
            out.append(Mention(start=a, end=b, text=text[a:b], codes=codes, prefixed=prefixed))
            i += k
        return out


def _marks_fit(raw_words: Sequence[str], unit: Unit, offset: int = 0) -> bool:
    """Every written syllable with marks carries the name's marks; unmarked ones fit any."""
    sigs = unit.sigs[offset : offset + len(raw_words)]
    for w, (skeleton, tone) in zip(raw_words, sigs, strict=True):
        s, t, marked = _syllable_sig(w)
        if marked and (s != skeleton or t != tone):
            return False
    return True


def _fold_with_offsets(text: str) -> tuple[str, Sequence[int]]:
    """Folded text and, per folded char, its offset in `text`."""
    if not _COMBINING.search(text):
        folded = text.translate(_TABLE)
        if len(folded) == len(text):
            return folded, range(len(text))
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(text):
        f = _TABLE[ord(ch)] if ord(ch) in _TABLE else fold(ch)
        for c in f:
            chars.append(c)
            offsets.append(i)
    return "".join(chars), offsets
