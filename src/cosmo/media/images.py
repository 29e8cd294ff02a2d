"""Decoding uploads with pillow. Nothing about an upload is trusted: not its name, not its declared content type.
It must decode as JPEG, PNG or WebP within the pixel limit; it is stored re-encoded from its pixels alone, so no
metadata survives (EXIF with GPS and device serials, XMP, IPTC, comments, PNG text chunks, anything appended to
the file). Only the ICC colour profile is carried over, and the EXIF capture time is kept as `taken_at`.

Decoded pixels take far more memory than the upload (a 113 kB PNG can be 40 megapixels, 160 MB once decoded), so
concurrent decodes in one process share a pixel budget: see `PixelBudget`."""

from __future__ import annotations

import io
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from PIL import Image, UnidentifiedImageError

from cosmo.domain.errors import ValidationFailed
from cosmo.domain.photos import MAX_BYTES, MAX_PIXELS

# Pillow warns above this and refuses above twice it; we refuse above it, before decoding a pixel.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# MPO is a JPEG with extra frames (some phones' cameras write it): its first frame is stored as a JPEG.
FORMATS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
THUMBNAIL_SIZE = 400
NOT_AN_IMAGE = "Upload a valid image. The file you uploaded was either not an image or a corrupted image."
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
OFFSET_TIME_ORIGINAL = 36881
DATETIME = 306
ORIENTATION = 0x0112
TRANSPOSITIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Processed:
    extension: str
    data: bytes
    thumbnail: bytes
    width: int
    height: int
    taken_at: datetime | None


class DecodeBusy(Exception):
    """Other uploads are using the decode budget and none freed enough in time: a 503, worth retrying soon."""


class PixelBudget:
    """Bounds the pixels that the threads of this process hold decoded at once, hence their memory.

    Waiters are admitted in arrival order, so a stream of small images cannot starve a large one. An image is
    always admitted when nothing else is decoding, so one at the pixel limit works whatever the budget."""

    def __init__(self, pixels: int, timeout: float):
        self.pixels = pixels
        self.timeout = timeout
        self._in_use = 0
        self._queue: deque[object] = deque()
        self._changed = threading.Condition()

    @contextmanager
    def reserve(self, pixels: int) -> Iterator[None]:
        deadline = time.monotonic() + self.timeout
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            try:
                while self._queue[0] is not ticket or (self._in_use and self._in_use + pixels > self.pixels):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise DecodeBusy("Too many images are being processed; try again shortly.")
                    self._changed.wait(remaining)
                self._in_use += pixels
            finally:
                self._queue.remove(ticket)
                self._changed.notify_all()  # the next in line may fit now
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= pixels
                self._changed.notify_all()


# 40 megapixels: one upload at the limit at a time (about 160 MB decoded), or several ordinary photos together.
# A waiting decode holds one of the server's worker threads, so it does not wait long before answering 503.
DECODES = PixelBudget(MAX_PIXELS, timeout=10.0)


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed.one("image", message)


def _taken_at(exif: Image.Exif) -> datetime | None:
    try:
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
    except Exception:  # a malformed EXIF block costs the capture time, never the upload
        return None


def _exif(image: Image.Image) -> Image.Exif:
    try:
        return image.getexif()
    except Exception:  # a broken EXIF block loses us taken_at and orientation, not the photo
        return Image.Exif()


def _orientation(exif: Image.Exif) -> int | None:
    value = exif.get(ORIENTATION)
    return value if isinstance(value, int) else None


def _opened(raw: bytes) -> Image.Image:
    """Reads the header only: the format and size, which decide whether (and how much) to decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(raw))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _refuse("The image has too many pixels (at most 40 megapixels).") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise _refuse(NOT_AN_IMAGE) from None
    if source.format not in FORMATS:
        raise _refuse("Upload a valid image: JPEG, PNG or WebP.")
    width, height = source.size
    if width * height > MAX_PIXELS:
        raise _refuse(f"The image has {width * height / 1e6:.0f} megapixels; at most 40 are accepted.")
    return source


def _load(source: Image.Image) -> None:
    failed = False
    try:
        source.load()
    except (OSError, SyntaxError, ValueError, EOFError):
        failed = True
    # Raised outside the handler so the new error has no context: the decoder's traceback would otherwise keep
    # the half-decoded pixels alive after the budget is released.
    if failed:
        raise _refuse(NOT_AN_IMAGE)


def _thumbnail(image: Image.Image) -> bytes:
    # Resized straight from the image, not from a full-size copy as Image.thumbnail() needs.
    scale = min(1.0, THUMBNAIL_SIZE / image.width, THUMBNAIL_SIZE / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    thumb = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if thumb.mode not in ("RGB", "RGBA"):
        thumb = thumb.convert("RGBA" if "A" in thumb.getbands() or "transparency" in thumb.info else "RGB")
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=80)
    return out.getvalue()


def _encoded(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    icc = image.info.get("icc_profile")
    if kind == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=88, icc_profile=icc)
    elif kind == "PNG":
        image.save(out, "PNG", icc_profile=icc)
    else:
        image.save(out, "WEBP", quality=85, icc_profile=icc)
    return out.getvalue()


def process(raw: bytes) -> Processed:
    if len(raw) > MAX_BYTES:
        raise _refuse(f"The image is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    if not raw:
        raise _refuse("The submitted file is empty.")
    image = _opened(raw)
    kind = "JPEG" if image.format == "MPO" else (image.format or "")
    with DECODES.reserve(image.width * image.height):
        try:
            _load(image)
            if kind == "WEBP":
                # Pillow's WebP decoder keeps two more canvases the size of the image (for animations) until the
                # file is closed: a copy lets them go before encoding, which needs as much again.
                decoded = image.copy()
                image.close()
                image = decoded
            # Read after decoding: a PNG may carry its EXIF after the pixels, and asking for it earlier would
            # decode outside the budget.
            exif = _exif(image)
            taken_at = _taken_at(exif)
            if transposition := TRANSPOSITIONS.get(_orientation(exif)):
                upright = image.transpose(transposition)
                upright.info = image.info
                image.close()  # a rotated photo holds two full copies only for the rotation itself
                image = upright
            # Save methods copy some of these (a JPEG's comment) unasked: keep only colour and transparency.
            image.info = {k: v for k, v in image.info.items() if k in ("icc_profile", "transparency")}
            data = _encoded(image, kind)
            thumbnail = _thumbnail(image)
            return Processed(FORMATS[kind], data, thumbnail, image.width, image.height, taken_at)
        finally:
            image.close()  # frees the pixels before the budget is given back, whatever was raised
