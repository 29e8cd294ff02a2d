"""Stored media files and their short-lived signed URLs.

A URL carries its expiry and an HMAC of path and expiry, so it works in an image widget with no headers and can
be handed on, but only until it expires; changing either part breaks the signature. The signing key is derived
from the secret key, so media signatures and tokens never share a key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path
from uuid import UUID

# ASCII only and bounded: whatever arrives in a URL is refused by pattern before it reaches int(), hmac or the disk.
MEDIA_PATH = re.compile(r"task_images/[0-9]{1,20}/[A-Za-z0-9_-]{1,100}\.(jpg|png|webp)")
# Chat attachments: chat/<room>/<message>-<random>.<ext>, room and message as UUID hex.
CHAT_PATH = re.compile(r"chat/[0-9a-f]{32}/[0-9a-f]{32}-[A-Za-z0-9_]{12}\.(jpg|png|webp|pdf|txt|docx|xlsx|pptx)")
# Uploaded booking spreadsheets, kept until their import is done (never served).
IMPORT_PATH = re.compile(r"imports/imp_[0-9]{1,20}\.(xlsx|xlsm|csv)")
EXPIRES = re.compile(r"[0-9]{1,12}")  # str.isdigit() admits "²", which int() refuses; 12 digits last 30,000 years
SIGNATURE = re.compile(r"[A-Za-z0-9_-]{32}")  # 24 bytes, unpadded base64url
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "txt": "text/plain",  # Litestar adds the charset (utf-8, which is what a text attachment was checked to be)
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


class MediaStore:
    def __init__(self, root: Path, secret_key: str, ttl_seconds: int):
        self.root = root.resolve()
        self._key = hmac.new(secret_key.encode(), b"cosmo-media-urls", hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds

    def new_name(self, task_id: int, photo_id: int, extension: str, suffix: str = "") -> str:
        # The random part keeps names unguessable even though a valid signature is needed anyway.
        return f"task_images/{task_id}/{photo_id}{suffix}-{secrets.token_urlsafe(9).replace('-', '_')}.{extension}"

    def chat_name(self, room_id: UUID, message_id: UUID, extension: str) -> str:
        return f"chat/{room_id.hex}/{message_id.hex}-{secrets.token_hex(6)}.{extension}"

    def _path(self, name: str) -> Path:
        if not (MEDIA_PATH.fullmatch(name) or CHAT_PATH.fullmatch(name) or IMPORT_PATH.fullmatch(name)):
            raise ValueError(f"not a media path: {name!r}")
        return self.root / name

    def save(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        os.replace(partial, path)  # readers never see half a file

    def read(self, name: str) -> bytes | None:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def _signature(self, name: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{name}\n{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")

    def signed_query(self, name: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.ttl_seconds)
        return f"expires={expires}&signature={self._signature(name, expires)}"

    def open_signed(self, name: str, expires: str, signature: str) -> tuple[Path, str] | None:
        """The file and its content type, or None when the path, signature or expiry is not good."""
        servable = MEDIA_PATH.fullmatch(name) or CHAT_PATH.fullmatch(name)
        if not (servable and EXPIRES.fullmatch(expires) and SIGNATURE.fullmatch(signature)):
            return None
        if not hmac.compare_digest(self._signature(name, int(expires)), signature):
            return None
        if int(expires) < time.time():
            return None
        path = self._path(name)
        try:
            if not path.is_file():
                return None
        except OSError:  # is_file() passes some errors on (a permission problem, say): still not a file to serve
            return None
        return path, CONTENT_TYPES[name.rsplit(".", 1)[1]]
