"""Photo proof: upload (multipart), list, read, review and delete a task's photos, and the signed media URLs that
serve the files."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, JSONBody, MultipartBody
from litestar.response import File
from msgspec import UNSET, UnsetType

from cosmo.api.security import CurrentUser
from cosmo.api.state import services_of
from cosmo.api.task_access import visible_task
from cosmo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from cosmo.domain.photos import MAX_BYTES, PHOTO_STATUS_DISPLAY, PHOTO_TYPE_DISPLAY

# The body limit for uploads: the image plus room for the form's other fields.
UPLOAD_BODY_LIMIT = MAX_BYTES + 256 * 1024

PHOTO_SELECT = (
    "ph.id, ph.task_id, ph.photo_type, ph.photo_status, ph.sequence_number, ph.is_primary, ph.description, ph.file,"
    " ph.thumbnail, ph.size_bytes, ph.width, ph.height, ph.taken_at, ph.checklist_item_id, ph.uploaded_by,"
    " u.username AS uploaded_by_username, ph.uploaded_at, ph.review_note, ph.reviewed_by, ph.reviewed_at"
)
PHOTO_FROM = "FROM task_photos_view ph LEFT JOIN users_view u ON u.id = ph.uploaded_by"


class ReviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    photo_status: str
    review_note: str | UnsetType = UNSET


def media_url(request: Request[Any, Any, Any], name: str) -> str:
    services = services_of(request)
    return f"{services.settings.public_url}/media/{name}?{services.runtime.media.signed_query(name)}"


def photo_out(request: Request[Any, Any, Any], row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "task": row["task_id"],
        "image": media_url(request, row["file"]),
        "thumbnail": media_url(request, row["thumbnail"]),
        "photo_type": row["photo_type"],
        "photo_type_display": PHOTO_TYPE_DISPLAY[row["photo_type"]],
        "photo_status": row["photo_status"],
        "photo_status_display": PHOTO_STATUS_DISPLAY[row["photo_status"]],
        "sequence_number": row["sequence_number"],
        "is_primary": bool(row["is_primary"]),
        "description": row["description"],
        "checklist_item": row["checklist_item_id"],
        "uploaded_at": row["uploaded_at"],
        "uploaded_by": row["uploaded_by"],
        "uploaded_by_username": row["uploaded_by_username"],
        "size_bytes": row["size_bytes"],
        "width": row["width"],
        "height": row["height"],
        "taken_at": row["taken_at"],
        "review_note": row["review_note"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
    }


async def task_photos(request: Request[Any, Any, Any], task_id: int) -> list[dict[str, Any]]:
    rows = await services_of(request).reader.fetchall(
        f"SELECT {PHOTO_SELECT} {PHOTO_FROM} WHERE ph.task_id = %s AND NOT ph.is_deleted"
        " ORDER BY ph.photo_type, ph.sequence_number, ph.id",
        (task_id,),
    )
    return [photo_out(request, r) for r in rows]


async def _photo(request: Request[Any, Any, Any], task_id: int, photo_id: int) -> dict[str, Any]:
    row = await services_of(request).reader.fetchone(
        f"SELECT {PHOTO_SELECT} {PHOTO_FROM} WHERE ph.id = %s AND ph.task_id = %s AND NOT ph.is_deleted",
        (photo_id, task_id),
    )
    if row is None:
        raise NotFound(f"photo {photo_id}")
    return photo_out(request, row)


def _form_text(form: dict[str, Any], name: str, default: str = "") -> str:
    value = form.get(name, default)
    if isinstance(value, list | UploadFile):
        raise ValidationFailed.one(name, "Send one text value.")
    return str(value)


def _form_int(form: dict[str, Any], name: str) -> int | None:
    raw = _form_text(form, name).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed.one(name, "A valid integer is required.") from None


class PhotosController(Controller):
    path = "/api/tasks/{task_id:int}/images"
    tags = ["photos"]

    @post(
        "/create/",
        status_code=201,
        summary="Upload a photo (multipart: image, photo_type, description, checklist_item)",
        request_max_body_size=UPLOAD_BODY_LIMIT,
    )
    async def upload(
        self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int], data: MultipartBody[dict[str, Any]]
    ) -> dict[str, Any]:
        services = services_of(request)
        user = request.user
        await services.throttle.hit("upload", str(user.id), services.settings.throttle_upload)
        await visible_task(request, task_id)
        image = data.get("image")
        if not isinstance(image, UploadFile):
            raise ValidationFailed.one("image", "No file was submitted.")
        if "task" in data and _form_int(data, "task") != task_id:
            raise ValidationFailed.one("task", "Does not match the task in the URL.")
        fields = {
            "photo_type": _form_text(data, "photo_type", "general"),
            "description": _form_text(data, "description"),
            "checklist_item": _form_int(data, "checklist_item"),
        }
        raw = await image.read()
        commands, actor = services.runtime.photos, user.actor()
        photo_id = await services.run(commands.upload(actor, task_id, raw, fields))
        return await _photo(request, task_id, photo_id)

    @get("/", summary="A task's photos")
    async def list_photos(self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int]) -> dict[str, Any]:
        await visible_task(request, task_id)
        photos = await task_photos(request, task_id)
        return {"count": len(photos), "results": photos}

    @get("/{photo_id:int}/", summary="A photo")
    async def get_photo(
        self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int], photo_id: FromPath[int]
    ) -> dict[str, Any]:
        await visible_task(request, task_id)
        return await _photo(request, task_id, photo_id)

    @patch("/{photo_id:int}/", summary="Review a photo (managers): approve, reject or archive")
    async def review(
        self,
        request: Request[CurrentUser, Any, Any],
        task_id: FromPath[int],
        photo_id: FromPath[int],
        data: JSONBody[ReviewRequest],
    ) -> dict[str, Any]:
        await visible_task(request, task_id)
        services = services_of(request)
        commands, actor = services.runtime.photos, request.user.actor()
        note = "" if data.review_note is UNSET else data.review_note
        await services.run(commands.review(actor, task_id, photo_id, data.photo_status, note))
        return await _photo(request, task_id, photo_id)

    @delete("/{photo_id:int}/", status_code=204, summary="Delete a photo (its uploader or a manager)")
    async def remove(
        self, request: Request[CurrentUser, Any, Any], task_id: FromPath[int], photo_id: FromPath[int]
    ) -> None:
        await visible_task(request, task_id)
        services = services_of(request)
        commands, actor = services.runtime.photos, request.user.actor()
        await services.run(commands.delete(actor, task_id, photo_id))


@get("/media/{name:path}", opt={"public": True}, summary="A media file, by signed URL", include_in_schema=False)
async def media(request: Request[Any, Any, Any], name: FromPath[str]) -> File:
    services = services_of(request)
    name = name.lstrip("/")
    expires = request.query_params.get("expires", "")
    found = services.runtime.media.open_signed(name, expires, request.query_params.get("signature", ""))
    # A deleted photo's file stays on disk for audit, but the links handed out before the deletion stop working.
    if found is None or not await services.reader.fetchone(
        "SELECT 1 AS live FROM task_photos_view WHERE (file = %s OR thumbnail = %s) AND NOT is_deleted", (name, name)
    ):
        raise PermissionDenied("bad or expired media signature, or a deleted photo")
    path, content_type = found
    # The link is a bearer credential: shared caches must not keep what it fetched, the browser only until expiry.
    max_age = max(0, int(expires) - int(time.time()))
    return File(
        path,
        content_disposition_type="inline",
        media_type=content_type,
        headers={"Cache-Control": f"private, max-age={max_age}"},
    )
