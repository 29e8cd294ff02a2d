"""Photo proof commands. Photos are events of their task. An upload is decoded and stored before its event is saved
(the event names the files); if the save fails, the files are removed again, so no event points at a missing file."""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.commands.tasks import live_task
from cosmo.domain.actors import Actor
from cosmo.domain.checks import check_choice, check_text, field_problems
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.ids import aggregate_id
from cosmo.domain.photos import DESCRIPTION_MAX, PHOTO_TYPES
from cosmo.media.images import process
from cosmo.media.store import MediaStore
from cosmo.storage.event_store import EventStore
from cosmo.storage.ids import IdAllocator


class PhotoCommands(Commands):
    def __init__(self, store: EventStore, ids: IdAllocator, media: MediaStore):
        super().__init__(store, ids)
        self.media = media

    async def upload(self, actor: Actor, task_id: int, raw: bytes, fields: dict[str, Any]) -> Outcome[int]:
        """`fields`: photo_type, description, checklist_item (id or None)."""
        problems = field_problems(
            fields,
            {
                "photo_type": lambda v: check_choice(v, PHOTO_TYPES),
                "description": lambda v: check_text(v, DESCRIPTION_MAX, multiline=True),
            },
        )
        if problems:
            raise ValidationFailed(problems)
        # Refuse early (before decoding megabytes) whoever may not add photos, or names an item the task lacks.
        task = await live_task(self.peek(), task_id, actor)
        task.require_worker(actor.id, actor.role)
        task.require_photos_open()
        if fields["checklist_item"] is not None:
            try:
                task.checklist_item(fields["checklist_item"])
            except NotFound:
                raise ValidationFailed.one("checklist_item", "This task's checklist has no such item.") from None
        image = await anyio.to_thread.run_sync(process, raw)
        photo_id = await self.ids.next("photo")
        file = self.media.new_name(task_id, photo_id, image.extension)
        thumbnail = self.media.new_name(task_id, photo_id, "webp", suffix="-thumb")
        await anyio.to_thread.run_sync(self.media.save, file, image.data)
        await anyio.to_thread.run_sync(self.media.save, thumbnail, image.thumbnail)
        photo = {
            "photo_type": fields["photo_type"],
            "checklist_item_id": fields["checklist_item"],
            "description": fields["description"],
            "file": file,
            "thumbnail": thumbnail,
            "size_bytes": len(image.data),
            "width": image.width,
            "height": image.height,
            "taken_at": image.taken_at,
        }

        async def decide(s: Session) -> int:
            (await live_task(s, task_id, actor)).add_photo(photo_id, photo, actor.id, actor.role)
            return photo_id

        try:
            return await self.execute(decide, retry=True, queue_on=aggregate_id("task", task_id))
        except BaseException:
            self.media.delete(file)
            self.media.delete(thumbnail)
            raise

    async def review(self, actor: Actor, task_id: int, photo_id: int, status: str, note: str) -> Outcome[None]:
        async def decide(s: Session) -> None:
            (await live_task(s, task_id, actor)).review_photo(photo_id, status, note, actor.id, actor.role)

        return await self.execute(decide, retry=False)

    async def delete(self, actor: Actor, task_id: int, photo_id: int) -> Outcome[None]:
        async def decide(s: Session) -> None:
            (await live_task(s, task_id, actor)).delete_photo(photo_id, actor.id, actor.role)

        return await self.execute(decide, retry=True)
