"""Text encodings of legacy Vietnamese files: sniff DBF bytes for UTF-8, TCVN3 (ABC), VNI, CP1258."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# TCVN3 (ABC, "font .VnTime") puts precomposed lower-case letters in 0xA1-0xFE and a few
# upper-case ones in 0xA1-0xA7. Each entry maps one byte to one Unicode character.
_TCVN3_LOWER = {
    0xB5: "à", 0xB8: "á", 0xB6: "ả", 0xB7: "ã", 0xB9: "ạ",
    0xA8: "ă", 0xBB: "ằ", 0xBE: "ắ", 0xBC: "ẳ", 0xBD: "ẵ", 0xC6: "ặ",
    0xA9: "â", 0xC7: "ầ", 0xCA: "ấ", 0xC8: "ẩ", 0xC9: "ẫ", 0xCB: "ậ",
    0xAE: "đ",
    0xCC: "è", 0xD0: "é", 0xCE: "ẻ", 0xCF: "ẽ", 0xD1: "ẹ",
    0xAA: "ê", 0xD2: "ề", 0xD5: "ế", 0xD3: "ể", 0xD4: "ễ", 0xD6: "ệ",
    0xD7: "ì", 0xDD: "í", 0xD8: "ỉ", 0xDC: "ĩ", 0xDE: "ị",
    0xDF: "ò", 0xE3: "ó", 0xE1: "ỏ", 0xE2: "õ", 0xE4: "ọ",
    0xAB: "ô", 0xE5: "ồ", 0xE8: "ố", 0xE6: "ổ", 0xE7: "ỗ", 0xE9: "ộ",
    0xAC: "ơ", 0xEA: "ờ", 0xED: "ớ", 0xEB: "ở", 0xEC: "ỡ", 0xEE: "ợ",
    0xEF: "ù", 0xF3: "ú", 0xF1: "ủ", 0xF2: "ũ", 0xF4: "ụ",
    0xAD: "ư", 0xF5: "ừ", 0xF8: "ứ", 0xF6: "ử", 0xF7: "ữ", 0xF9: "ự",
    0xFA: "ỳ", 0xFD: "ý", 0xFB: "ỷ", 0xFC: "ỹ", 0xFE: "ỵ",
    0xA1: "Ă", 0xA2: "Â", 0xA3: "Ê", 0xA4: "Ô", 0xA5: "Ơ", 0xA6: "Ư", 0xA7: "Đ",
}  # fmt: skip
TCVN3_DECODE = {bytes([b]): ch for b, ch in _TCVN3_LOWER.items()}
_TCVN3_TABLE = str.maketrans({chr(b): ch for b, ch in _TCVN3_LOWER.items()})

# VNI-Windows writes a base letter followed by a diacritic byte from this set.
_VNI_MARKS = set(
    b"\xf9\xf8\xfb\xf5\xef\xe2\xea\xf4\xf6\xf1\xd9\xd8\xdb\xd5\xcf\xc2\xca\xd4\xd6\xd1\xe9\xe8\xe5\xe4\xe3"
)


@dataclass(frozen=True)
class EncodingGuess:
    """What the text bytes of a file look like, and what to tell the user."""

    encoding: str  # "ascii", "utf-8", "tcvn3", "vni", "cp1258", "unknown"
    confidence: float
    sample: str = ""

    @property
    def is_legacy(self) -> bool:
        """True for the pre-Unicode Vietnamese encodings that need conversion."""
        return self.encoding in {"tcvn3", "vni", "cp1258", "unknown"}

    def message(self) -> str:
        """A sentence for the import report."""
        names = {
            "tcvn3": "TCVN3 (ABC, .VnTime fonts)",
            "vni": "VNI (VNI-Times fonts)",
            "cp1258": "Windows-1258",
            "unknown": "an unknown 8-bit encoding",
        }
        if not self.is_legacy:
            return f"text is {self.encoding}"
        hint = (
            "converted to Unicode"
            if self.encoding == "tcvn3"
            else "imported byte-for-byte as Latin-1; re-export it as UTF-8 or pass --encoding"
        )
        return (
            f"text is not valid UTF-8: it looks like {names[self.encoding]} "
            f"(confidence {self.confidence:.0%}, e.g. {self.sample!r}); {hint}"
        )


def guess_encoding(chunks: list[bytes]) -> EncodingGuess:
    """Classify raw text values (bytes) as ASCII, UTF-8 or a legacy Vietnamese 8-bit encoding."""
    data = b"\n".join(c for c in chunks if c)
    if not any(b >= 0x80 for b in data):
        return EncodingGuess("ascii", 1.0)
    try:
        data.decode("utf-8")
        return EncodingGuess("utf-8", 1.0)
    except UnicodeDecodeError:
        pass
    sample = next((c for c in chunks if any(b >= 0x80 for b in c)), b"")
    shown = sample[:40].decode("latin-1")
    high = [i for i, b in enumerate(data) if b >= 0x80]
    tcvn_hits = sum(1 for i in high if data[i] in _TCVN3_LOWER)
    # VNI marks follow a Latin vowel (or d/D for đ); TCVN3 bytes stand in for the vowel.
    vni_hits = sum(
        1
        for i in high
        if data[i] in (0xF1, 0xD1)  # VNI đ/Đ stand alone
        or (data[i] in _VNI_MARKS and i > 0 and chr(data[i - 1]).lower() in "aeiouy")
    )
    n = len(high)
    cp1258_marks = sum(1 for i in high if data[i] in (0xCC, 0xD2, 0xDE, 0xEC, 0xF2))
    if vni_hits / n >= 0.9:
        return EncodingGuess("vni", vni_hits / n, shown)
    if tcvn_hits / n >= 0.8:
        return EncodingGuess("tcvn3", tcvn_hits / n, shown)
    if cp1258_marks / n >= 0.3:
        return EncodingGuess("cp1258", cp1258_marks / n, shown)
    return EncodingGuess("unknown", 0.5, shown)


def tcvn3_to_unicode(text: str) -> str:
    """Convert TCVN3 text that was decoded as Latin-1 (byte-for-byte) into Unicode."""
    return text.translate(_TCVN3_TABLE)


def dbf_text_samples(data: bytes, max_records: int = 2000) -> list[bytes]:
    """Raw bytes of the character fields of the first records of a DBF file."""
    if len(data) < 32:
        return []
    n_records, header_len, record_len = struct.unpack("<IHH", data[4:12])
    fields: list[tuple[int, int]] = []
    offset = 1  # the deletion flag
    pos = 32
    while pos + 32 <= header_len and data[pos] != 0x0D:
        ftype = chr(data[pos + 11])
        flen = data[pos + 16]
        if ftype in "CM":
            fields.append((offset, flen))
        offset += flen
        pos += 32
    out: list[bytes] = []
    for r in range(min(n_records, max_records)):
        start = header_len + r * record_len
        rec = data[start : start + record_len]
        if len(rec) < record_len:
            break
        out.extend(rec[o : o + ln].rstrip(b" \x00") for o, ln in fields)
    return out


CPG_ALIASES = {
    "65001": "utf-8",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "1258": "cp1258",
    "cp1258": "cp1258",
    "windows-1258": "cp1258",
    "1252": "cp1252",
    "ansi 1252": "cp1252",
    "88591": "latin-1",
    "iso-8859-1": "latin-1",
    "iso88591": "latin-1",
}


def normalise_encoding_name(name: str) -> str:
    """Map a .cpg or user-given name to a codec name Python and GDAL accept (or 'tcvn3'/'vni')."""
    key = name.strip().lower()
    if key in {"tcvn3", "tcvn", "abc", "tcvn-3", "vntime"}:
        return "tcvn3"
    if key in {"vni", "vni-windows"}:
        return "vni"
    return CPG_ALIASES.get(key, key)
