"""Photo proof commands. An upload is decoded and stored before its event is saved (the event names the files);
if the save fails, the files are removed again, so no event points at a missing file."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application

from cosmo.commands.tasks import TaskCommands
from cosmo.domain.actors import Actor
from cosmo.domain.checks import check_choice, check_text, field_problems
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.photos import DESCRIPTION_MAX, PHOTO_TYPES
from cosmo.media.images import process
from cosmo.media.store import MediaStore
from cosmo.storage.ids import IdAllocator


class PhotoCommands(TaskCommands):
    """Photos are events of their task: these load tasks as the other task commands do."""

    def __init__(self, app: Application, ids: IdAllocator, media: MediaStore):
        super().__init__(app, ids)
        self.media = media

    def upload(self, actor: Actor, task_id: int, raw: bytes, fields: dict[str, Any]) -> tuple[int, int]:
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
        task = self._task(task_id)
        task.require_worker(actor.id, actor.role)
        task.require_photos_open()
        if fields["checklist_item"] is not None:
            try:
                task.checklist_item(fields["checklist_item"])
            except NotFound:
                raise ValidationFailed.one("checklist_item", "This task's checklist has no such item.") from None
        image = process(raw)
        photo_id = self.ids.next("photo")
        file = self.media.new_name(task_id, photo_id, image.extension)
        thumbnail = self.media.new_name(task_id, photo_id, "webp", suffix="-thumb")
        self.media.save(file, image.data)
        self.media.save(thumbnail, image.thumbnail)
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

        def decide() -> tuple[int, int]:
            fresh = self._task(task_id)
            fresh.add_photo(photo_id, photo, actor.id, actor.role)
            return photo_id, self._save(fresh)

        try:
            return self._retrying(decide)
        except BaseException:
            self.media.delete(file)
            self.media.delete(thumbnail)
            raise

    def review(self, actor: Actor, task_id: int, photo_id: int, status: str, note: str) -> int:
        def decide() -> int:
            task = self._task(task_id)
            task.review_photo(photo_id, status, note, actor.id, actor.role)
            return self._save(task)

        return self._once(decide)

    def delete(self, actor: Actor, task_id: int, photo_id: int) -> int:
        def decide() -> int:
            task = self._task(task_id)
            task.delete_photo(photo_id, actor.id, actor.role)
            return self._save(task)

        return self._retrying(decide)
