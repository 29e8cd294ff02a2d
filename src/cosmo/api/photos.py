"""Photo proof: upload (multipart), list, read, review and delete a task's photos, and the signed media URLs that
serve the files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, MultipartBody
from litestar.response import File
from msgspec import UNSET, UnsetType

from cosmo.api.deps import Context
from cosmo.api.params import form_id
from cosmo.api.wire import one_of
from cosmo.api.wire import text as max_text
from cosmo.domain.errors import PermissionDenied, ValidationFailed
from cosmo.domain.photos import MAX_BYTES, REVIEW_NOTE_MAX, REVIEW_STATUSES
from cosmo.projections.tasks import PhotoList, PhotoOut

# The body limit for uploads: the image plus room for the form's other fields.
UPLOAD_BODY_LIMIT = MAX_BYTES + 256 * 1024


@dataclass
class PhotoForm:
    """The upload form. `checklist_item` ties the photo to an item of the task's checklist (its proof); `task`, if
    sent, must be the task of the URL."""

    image: UploadFile
    photo_type: str = "general"
    description: str = ""
    checklist_item: str | None = None
    task: str | None = None


class ReviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    photo_status: one_of(REVIEW_STATUSES)
    review_note: max_text(REVIEW_NOTE_MAX) | UnsetType = UNSET


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
        self,
        task_id: FromPath[int],
        data: MultipartBody[PhotoForm],
        ctx: NamedDependency[Context],
    ) -> PhotoOut:
        await ctx.services.throttle.hit("upload", str(ctx.actor.id), ctx.services.settings.throttle_upload)
        if data.task is not None and form_id("task", data.task) != task_id:
            raise ValidationFailed.one("task", "Does not match the task in the URL.")
        fields = {
            "photo_type": data.photo_type,
            "description": data.description,
            "checklist_item": form_id("checklist_item", data.checklist_item),
        }
        raw = await data.image.read()
        photo_id = await ctx.services.run(ctx.photo_commands.upload(ctx.actor, task_id, raw, fields))
        return await ctx.tasks.photo(ctx.actor, task_id, photo_id)

    @get("/", summary="A task's photos")
    async def list_photos(
        self,
        task_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> PhotoList:
        return await ctx.tasks.photos(ctx.actor, task_id)

    @get("/{photo_id:int}/", summary="A photo")
    async def get_photo(
        self,
        task_id: FromPath[int],
        photo_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> PhotoOut:
        return await ctx.tasks.photo(ctx.actor, task_id, photo_id)

    @patch("/{photo_id:int}/", summary="Review a photo (managers): approve, reject or archive")
    async def review(
        self,
        task_id: FromPath[int],
        photo_id: FromPath[int],
        data: JSONBody[ReviewRequest],
        ctx: NamedDependency[Context],
    ) -> PhotoOut:
        note = "" if data.review_note is UNSET else data.review_note
        await ctx.services.run(ctx.photo_commands.review(ctx.actor, task_id, photo_id, data.photo_status, note))
        return await ctx.tasks.photo(ctx.actor, task_id, photo_id)

    @delete("/{photo_id:int}/", status_code=204, summary="Delete a photo (its uploader or a manager)")
    async def remove(
        self,
        task_id: FromPath[int],
        photo_id: FromPath[int],
        ctx: NamedDependency[Context],
    ) -> None:
        await ctx.services.run(ctx.photo_commands.delete(ctx.actor, task_id, photo_id))


@get("/media/{name:path}", opt={"public": True}, summary="A media file, by signed URL", include_in_schema=False)
async def media(
    request: Request[Any, Any, Any],
    name: FromPath[str],
    ctx: NamedDependency[Context],
) -> File:
    name = name.lstrip("/")
    expires = request.query_params.get("expires", "")
    found = ctx.services.runtime.media.open_signed(name, expires, request.query_params.get("signature", ""))
    # A deleted photo's or message's file stays on disk for audit, but the links handed out before the deletion
    # stop working.
    filename = None
    if found is None:
        live = False
    elif name.startswith("chat/"):
        filename = await ctx.chat.attachment_name(name)  # downloads keep the name they were sent with
        live = filename is not None
    else:
        live = await ctx.tasks.file_is_live(name)
    if not live or found is None:
        raise PermissionDenied("bad or expired media signature, or a deleted photo or message")
    path, content_type = found
    # The link is a bearer credential: shared caches must not keep what it fetched, the browser only until expiry.
    max_age = max(0, int(expires) - int(time.time()))
    return File(
        path,
        filename=filename,
        # Only images are shown in place; a document is downloaded, never rendered by the browser as our page.
        content_disposition_type="inline" if content_type.startswith("image/") else "attachment",
        media_type=content_type,
        headers={"Cache-Control": f"private, max-age={max_age}"},
    )
