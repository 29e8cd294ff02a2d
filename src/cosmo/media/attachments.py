"""Chat attachments, recognised by their content, never by name or declared type: images are decoded and
re-encoded like photos (so they lose their metadata); PDF, plain text and Office documents are kept as sent;
anything else is refused."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from cosmo.domain.chat import ATTACHMENT_MAX_BYTES
from cosmo.domain.errors import ValidationFailed
from cosmo.media.images import process

IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
OFFICE = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}
TEXT_SNIFF = 64 * 1024  # text is recognised from its start; the whole file must still be UTF-8


@dataclass(frozen=True)
class Attachment:
    kind: str  # the message type it makes: "image" or "file"
    extension: str
    data: bytes


def _is_image(raw: bytes) -> bool:
    return raw.startswith(IMAGE_MAGIC) or (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP")


def _office(raw: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    for prefix, extension in OFFICE.items():
        if any(n.startswith(prefix) for n in names):
            return extension
    return None


def _is_text(raw: bytes) -> bool:
    if b"\x00" in raw[:TEXT_SNIFF]:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def classify(raw: bytes) -> Attachment:
    """What an upload is, ready to store; a 400 on `attachment` when it is none of what we keep."""
    if not raw:
        raise ValidationFailed.one("attachment", "The submitted file is empty.")
    if len(raw) > ATTACHMENT_MAX_BYTES:
        raise ValidationFailed.one("attachment", f"An attachment is at most {ATTACHMENT_MAX_BYTES // 2**20} MB.")
    if _is_image(raw):
        try:
            image = process(raw)
        except ValidationFailed as refused:
            raise ValidationFailed({"attachment": refused.details.get("image", ["Not a valid image."])}) from None
        return Attachment("image", image.extension, image.data)
    if raw.startswith(b"%PDF-"):
        return Attachment("file", "pdf", raw)
    if raw.startswith(b"PK\x03\x04") and (extension := _office(raw)):
        return Attachment("file", extension, raw)
    if _is_text(raw):
        return Attachment("file", "txt", raw)
    raise ValidationFailed.one(
        "attachment", "Attach an image (JPEG, PNG or WebP), a PDF, a plain-text file or an Office document."
    )
