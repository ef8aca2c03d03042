"""Report photos: verified by decoding (never by name or declared type), EXIF GPS read, EXIF stripped."""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps, UnidentifiedImageError

from layers.errors import InvalidInputError, PayloadTooLargeError

ALLOWED_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
MAX_PIXELS = 40_000_000
_GPS_IFD = 0x8825


@dataclass(frozen=True)
class Photo:
    """A validated photo, re-encoded without metadata, ready to be stored."""

    data: bytes
    media_type: str
    ext: str
    width: int
    height: int
    sha256: str
    gps: tuple[float, float] | None


def _ratio(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        return float(value[0]) / float(value[1])
    return float(value)


def _dms(values: Any, ref: Any, negative: str) -> float:
    deg, minutes, seconds = (_ratio(v) for v in values)
    out = deg + minutes / 60 + seconds / 3600
    ref_s = ref.decode() if isinstance(ref, bytes) else str(ref or "")
    return -out if ref_s.strip().upper() == negative else out


def exif_gps(img: Image.Image) -> tuple[float, float] | None:
    """(lon, lat) from the image's EXIF GPS tags, or None when absent or unreadable."""
    try:
        gps = img.getexif().get_ifd(_GPS_IFD)
        if 2 not in gps or 4 not in gps:
            return None
        lat = _dms(gps[2], gps.get(1), "S")
        lon = _dms(gps[4], gps.get(3), "W")
    except (ValueError, TypeError, ZeroDivisionError, KeyError):
        return None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or (lon == 0 and lat == 0):
        return None
    return lon, lat


def process_photo(raw: bytes, max_bytes: int, name: str = "photo") -> Photo:
    """Decode `raw` fully (JPEG or PNG only), read its GPS, and re-encode it without EXIF.

    Raises PayloadTooLargeError over `max_bytes`, InvalidInputError for any other type or a
    corrupt or truncated file.
    """
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(
            f"{name}: {len(raw)} bytes is more than the {max_bytes}-byte limit",
            file=name,
            i18n="err.media.bytes_more_than_byte_limit",
            name=name,
            n=len(raw),
            max_bytes=max_bytes,
        )
    if not raw:
        raise InvalidInputError(
            f"{name}: empty file", file=name, i18n="err.media.empty_file", name=name
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(raw))
            fmt = probe.format
            if fmt not in ALLOWED_FORMATS:
                raise InvalidInputError(
                    f"{name}: {fmt or 'unknown'} images are not accepted; send JPEG or PNG",
                    file=name,
                    i18n="err.media.images_are_not_accepted_send",
                    name=name,
                    fmt=fmt or "unknown",
                )
            if probe.width * probe.height > MAX_PIXELS:
                raise InvalidInputError(
                    f"{name}: more than {MAX_PIXELS} pixels",
                    file=name,
                    i18n="err.media.more_than_pixels",
                    name=name,
                    MAX_PIXELS=MAX_PIXELS,
                )
            probe.verify()
            img = Image.open(io.BytesIO(raw))
            img.load()
    except InvalidInputError:
        raise
    except Image.DecompressionBombError as exc:  # far beyond MAX_PIXELS: refused unread
        raise InvalidInputError(
            f"{name}: more than {MAX_PIXELS} pixels",
            file=name,
            i18n="err.media.more_than_pixels",
            name=name,
            MAX_PIXELS=MAX_PIXELS,
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning) as exc:
        raise InvalidInputError(
            f"{name}: not a readable JPEG or PNG image ({exc})",
            file=name,
            i18n="err.media.not_readable_jpeg_or_png",
            name=name,
            exc=str(exc),
        ) from exc
    gps = exif_gps(img)
    media_type, ext = ALLOWED_FORMATS[fmt]
    # Apply the EXIF orientation to the pixels, then write a fresh file with no metadata at all.
    clean = ImageOps.exif_transpose(img)
    clean.info = {}
    out = io.BytesIO()
    if fmt == "JPEG":
        if clean.mode not in ("RGB", "L"):
            clean = clean.convert("RGB")
        clean.save(out, format="JPEG", quality=88, optimize=True)
    else:
        clean.save(out, format="PNG", optimize=False)
    data = out.getvalue()
    return Photo(
        data=data,
        media_type=media_type,
        ext=ext,
        width=clean.width,
        height=clean.height,
        sha256=hashlib.sha256(data).hexdigest(),
        gps=gps,
    )


def store_photo(media_root: Path, folder: str, photo: Photo) -> str:
    """Write the cleaned photo under media_root/reports/<folder>/; returns the relative path."""
    rel = Path("reports") / folder / f"{uuid.uuid4().hex}.{photo.ext}"
    target = media_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    tmp.write_bytes(photo.data)
    tmp.replace(target)
    return rel.as_posix()


def remove_files(media_root: Path, rel_paths: list[str]) -> None:
    """Delete stored photos (used when the database write that referenced them fails)."""
    for rel in rel_paths:
        (media_root / rel).unlink(missing_ok=True)


def resolve_path(media_root: Path, rel: str) -> Path:
    """Absolute path of a stored photo, refusing anything outside media_root/reports."""
    base = (media_root / "reports").resolve()
    target = (media_root / rel).resolve()
    if not target.is_relative_to(base):
        raise InvalidInputError("bad photo path", i18n="err.media.bad_photo_path")
    return target
