"""Decoding uploads with pillow. Nothing about an upload is trusted: not its name, not its declared content type.
It must decode as JPEG, PNG or WebP within the pixel limit; it is stored re-encoded, which drops EXIF (GPS,
device serials) and anything appended to the file, with the EXIF capture time kept as `taken_at`."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from PIL import Image, ImageOps, UnidentifiedImageError

from cosmo.domain.errors import ValidationFailed
from cosmo.domain.photos import MAX_BYTES, MAX_PIXELS

# Pillow warns above this and refuses above twice it; we refuse above it, before decoding a pixel.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
THUMBNAIL_SIZE = (400, 400)
NOT_AN_IMAGE = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
OFFSET_TIME_ORIGINAL = 36881
DATETIME = 306


@dataclass(frozen=True)
class Processed:
    extension: str
    data: bytes
    thumbnail: bytes
    width: int
    height: int
    taken_at: datetime | None


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed.one("image", message)


def _taken_at(image: Image.Image) -> datetime | None:
    try:
        exif = image.getexif()
        ifd = exif.get_ifd(EXIF_IFD)
        raw = ifd.get(DATETIME_ORIGINAL) or exif.get(DATETIME)
        if not raw:
            return None
        taken = datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
        offset = str(ifd.get(OFFSET_TIME_ORIGINAL) or "").strip("\x00 ")
        if len(offset) == 6 and offset[0] in "+-" and offset[3] == ":":
            sign = 1 if offset[0] == "+" else -1
            zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
            return taken.replace(tzinfo=zone).astimezone(UTC)
        return taken.replace(tzinfo=UTC)  # no offset recorded: read as UTC
    except (ValueError, TypeError, KeyError, OSError):
        return None


def process(raw: bytes) -> Processed:
    if len(raw) > MAX_BYTES:
        raise _refuse(f"The image is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    if not raw:
        raise _refuse("The submitted file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as source:
                kind = source.format or ""
                if kind not in FORMATS:
                    raise _refuse("Upload a valid image: JPEG, PNG or WebP.")
                width, height = source.size
                if width * height > MAX_PIXELS:
                    raise _refuse(f"The image has {width * height / 1e6:.0f} megapixels; at most 40 are accepted.")
                taken_at = _taken_at(source)
                source.seek(0)
                image = ImageOps.exif_transpose(source)
                image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _refuse("The image has too many pixels (at most 40 megapixels).") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise _refuse(NOT_AN_IMAGE) from None
    icc = image.info.get("icc_profile")
    out = io.BytesIO()
    if kind == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=88, icc_profile=icc)
    elif kind == "PNG":
        image.save(out, "PNG", icc_profile=icc)
    else:
        image.save(out, "WEBP", quality=85, icc_profile=icc)
    thumb = image.copy()
    thumb.thumbnail(THUMBNAIL_SIZE)
    if thumb.mode not in ("RGB", "RGBA"):
        thumb = thumb.convert("RGBA" if "A" in thumb.getbands() else "RGB")
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, "WEBP", quality=80)
    return Processed(FORMATS[kind], out.getvalue(), thumb_out.getvalue(), image.width, image.height, taken_at)
