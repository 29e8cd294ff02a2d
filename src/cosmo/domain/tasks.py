"""Tasks: assignment, the status machine, and the checklist a task carries.

Who may act is decided here from the actor's role and id (passed in by the command), so the same rules hold
whichever endpoint the command arrives through.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.actors import Actor, require_admin
from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.checks import (
    Check,
    changed,
    check_choice,
    check_int,
    check_moment,
    check_text,
    field_problems,
    utc,
)
from cosmo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cosmo.domain.identity import ADMIN_ROLES
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id
from cosmo.domain.photos import PROOF_STATUSES, REVIEW_NOTE_MAX, REVIEW_STATUSES

STATUSES = ("pending", "in-progress", "completed", "canceled")
OPEN_STATUSES = ("pending", "in-progress")
PRIORITIES = ("low", "medium", "high", "urgent")
TITLE_MAX = 200
DESCRIPTION_MAX = 5000
NOTES_MAX = 5000
VALUE_MAX = 1000
# Roles that may be given tasks.
ASSIGNABLE_ROLES = ("superuser", "manager", "staff")

# (from, to) -> who may make the move: "worker" = the assignee or an admin, "admin" = superuser or manager.
TRANSITIONS = {
    ("pending", "in-progress"): "worker",
    ("in-progress", "pending"): "worker",
    ("in-progress", "completed"): "worker",
    ("pending", "canceled"): "admin",
    ("in-progress", "canceled"): "admin",
    ("completed", "in-progress"): "admin",
}


def sees_all_tasks(role: str) -> bool:
    """Everyone but staff sees every task (viewers and auditors read-only)."""
    return role != "staff"


def unassigned_types_seen(task_group: str) -> tuple[str, ...]:
    """The task types whose unassigned tasks staff of a group see and may claim: `general` every type, `none`
    none, otherwise the type of the same name. (Staff always see the tasks assigned to them.)"""
    if task_group == "general":
        return TASK_TYPES
    return (task_group,) if task_group in TASK_TYPES else ()


def group_covers(task_group: str, task_type: str) -> bool:
    """Whether staff of a task group see (and may claim) an unassigned task of this type."""
    return task_type in unassigned_types_seen(task_group)


def sees_task(actor: Actor, assigned_to: int | None, task_type: str) -> bool:
    """Whether `actor` may see one task: the rule above for a single task (api/task_access.py has it as SQL)."""
    if sees_all_tasks(actor.role):
        return True
    if assigned_to is not None:
        return assigned_to == actor.id
    return group_covers(actor.task_group, task_type)


TASK_CHECKS: dict[str, Check] = {
    "title": lambda v: check_text(v, TITLE_MAX, required=True),
    "description": lambda v: check_text(v, DESCRIPTION_MAX, multiline=True),
    "task_type": lambda v: check_choice(v, TASK_TYPES),
    "priority": lambda v: check_choice(v, PRIORITIES),
    "status": lambda v: check_choice(v, STATUSES),
    "notes": lambda v: check_text(v, NOTES_MAX, multiline=True),
    "due_date": check_moment,
}

REVIEW_CHECKS: dict[str, Check] = {
    "photo_status": lambda v: check_choice(v, REVIEW_STATUSES),
    "review_note": lambda v: check_text(v, REVIEW_NOTE_MAX, multiline=True),
}


def task_problems(fields: dict[str, Any]) -> dict[str, list[str]]:
    return field_problems(fields, TASK_CHECKS)


def task_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Checked task fields as the aggregate keeps them (raises ValidationFailed): the title trimmed, the due date
    in UTC."""
    problems = task_problems(fields)
    if problems:
        raise ValidationFailed(problems)
    out = dict(fields)
    if "title" in out:
        out["title"] = out["title"].strip()
    if out.get("due_date") is not None:
        out["due_date"] = utc(out["due_date"])
    return out


class Task(Aggregate):
    snapshot_every = SNAPSHOT_EVERY
    # Events replace `photos`, `photo_sequences` and `item_states` (and the entry they change) rather than change
    # them in place, so the command side hands a cached task out as a shallow copy (`storage.event_store.copy_of`):
    # pickling it in and out of that cache was a tenth of an API process's time under status PATCHes.
    shallow_copies = True

    @staticmethod
    def create_id(task_id: int) -> UUID:
        return aggregate_id("task", task_id)

    @event("Created")
    def __init__(
        self,
        task_id: int,
        title: str,
        description: str,
        task_type: str,
        priority: str,
        property_id: int | None,
        unit_id: int | None,
        assigned_to: int | None,
        due_date: datetime | None,
        checklist: dict[str, Any] | None,
        actor_id: int,
        turnover: dict[str, Any] | None = None,
    ):
        """`turnover`: a turnover task's {"booking_id", "check_out"} (see `follow_booking`)."""
        self.task_id = task_id
        self.title = title
        self.description = description
        self.task_type = task_type
        self.priority = priority
        self.property_id = property_id
        self.unit_id = unit_id
        self.assigned_to = assigned_to
        self.due_date = due_date
        self.created_by = actor_id
        self.status = "pending"
        self.notes = ""
        self.is_deleted = False
        # {"template_id", "template_name", "items": [{"id", "text", "item_type", "is_required", "room"}]}
        self.checklist = checklist
        # item id -> {"completed", "value", "notes", "completed_at", "completed_by"}
        self.item_states: dict[int, dict[str, Any]] = {}
        # photo id -> {"photo_type", "checklist_item_id", "status", "uploaded_by", "sequence_number",
        # "is_primary"}; deleted photos are dropped
        self.photos: dict[int, dict[str, Any]] = {}
        self.photo_sequences: dict[str, int] = {}  # photo type -> last sequence number given
        # A turnover task's booking, and the check-out its due date was last set from (see `follow_booking`).
        self.turnover_booking_id: int | None = turnover["booking_id"] if turnover else None
        self.turnover_check_out: datetime | None = turnover["check_out"] if turnover else None
        self.booking_cancel_told = False

    # -- who may act -------------------------------------------------------------------------------------------------

    def _require_live(self) -> None:
        if self.is_deleted:
            raise NotFound(f"task {self.task_id}")

    def require_worker(self, actor_id: int, actor_role: str) -> None:
        """The assignee, or a superuser/manager."""
        self._require_live()
        if actor_role not in ADMIN_ROLES and not (actor_role == "staff" and actor_id == self.assigned_to):
            raise PermissionDenied("only the assignee or a manager may work on this task")

    # -- editing -----------------------------------------------------------------------------------------------------

    def update(self, changes: dict[str, Any], actor_id: int, actor_role: str) -> None:
        require_admin(actor_role)
        self._require_live()
        changes = changed(self, changes)
        if changes:
            self._updated(changes, actor_id)

    @event("Updated")
    def _updated(self, changes: dict[str, Any], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    def delete(self, actor_id: int, actor_role: str) -> None:
        require_admin(actor_role)
        self._require_live()
        self._deleted(actor_id)

    @event("Deleted")
    def _deleted(self, actor_id: int) -> None:
        self.is_deleted = True

    def set_notes(self, notes: str, actor_id: int, actor_role: str) -> None:
        self.require_worker(actor_id, actor_role)
        if notes != self.notes:
            self._notes_changed(notes, actor_id)

    @event("NotesChanged")
    def _notes_changed(self, notes: str, actor_id: int) -> None:
        self.notes = notes

    # -- turnover ----------------------------------------------------------------------------------------------------

    def follow_booking(self, booking_id: int, check_out: datetime, changes: dict[str, Any], actor: Actor) -> None:
        """The turnover policy's edit: the task takes `changes` (its due date moved as its booking's check-out
        moved, its place, its priority) and remembers the check-out it now follows."""
        self.update(changes, actor.id, actor.role)
        if (booking_id, check_out) != (self.turnover_booking_id, self.turnover_check_out):
            self._followed(booking_id, check_out, actor.id)

    @event("BookingFollowed")
    def _followed(self, booking_id: int, check_out: datetime, actor_id: int) -> None:
        self.turnover_booking_id = booking_id
        self.turnover_check_out = check_out

    def tell_booking_cancelled(self, actor: Actor) -> None:
        """The booking behind a task already under way was cancelled: the task is left to its people, who are told
        (once)."""
        require_admin(actor.role)
        if not self.booking_cancel_told:
            self._booking_cancelled(actor.id)

    @event("BookingCancelled")
    def _booking_cancelled(self, actor_id: int) -> None:
        self.booking_cancel_told = True

    # -- assignment --------------------------------------------------------------------------------------------------

    def assign(self, assignee_id: int | None, actor_id: int, actor_role: str) -> None:
        require_admin(actor_role)
        self._require_live()
        if assignee_id != self.assigned_to:
            self._assigned(assignee_id, self.assigned_to, actor_id)

    def claim(self, actor_id: int, actor_role: str, actor_group: str) -> None:
        self._require_live()
        if actor_role != "staff" or not group_covers(actor_group, self.task_type):
            raise PermissionDenied("only staff of the task's group may claim it")
        if self.assigned_to is not None:
            raise Conflict("This task has already been taken.")
        if self.status not in OPEN_STATUSES:
            raise ValidationFailed.one("status", f"A {self.status} task cannot be claimed.")
        self._assigned(actor_id, None, actor_id)

    @event("Assigned")
    def _assigned(self, assignee_id: int | None, previous_id: int | None, actor_id: int) -> None:
        self.assigned_to = assignee_id

    # -- status ------------------------------------------------------------------------------------------------------

    def change_status(self, status: str, actor_id: int, actor_role: str) -> None:
        self._require_live()
        if status == self.status:
            self.require_worker(actor_id, actor_role)
            return
        who = TRANSITIONS.get((self.status, status))
        if who is None:
            raise ValidationFailed.one("status", f"A task cannot go from {self.status} to {status}.")
        if who == "admin":
            require_admin(actor_role)
        else:
            self.require_worker(actor_id, actor_role)
        if status == "completed":
            missing = self.missing_for_completion()
            if missing:
                raise ValidationFailed(missing)
        self._status_changed(status, self.status, actor_id)

    @event("StatusChanged")
    def _status_changed(self, status: str, previous: str, actor_id: int) -> None:
        self.status = status

    def missing_for_completion(self) -> dict[str, list[str]]:
        """What stops completion: required items unchecked, photo-required items without a photo."""
        if not self.checklist:
            return {}
        unchecked, no_photo = [], []
        for item in self.checklist["items"]:
            state = self.item_states.get(item["id"], {})
            if item["is_required"] and not state.get("completed"):
                unchecked.append(f'Item {item["id"]} "{item["text"]}" is required and not completed.')
            if item["item_type"] == "photo_required" and not self.has_proof(item["id"]):
                no_photo.append(f'Item {item["id"]} "{item["text"]}" needs a photo.')
        found = {}
        if unchecked:
            found["checklist"] = unchecked
        if no_photo:
            found["photos"] = no_photo
        return found

    # -- photos ------------------------------------------------------------------------------------------------------

    def has_proof(self, item_id: int) -> bool:
        return any(p["checklist_item_id"] == item_id and p["status"] in PROOF_STATUSES for p in self.photos.values())

    def add_photo(self, photo_id: int, photo: dict[str, Any], actor_id: int, actor_role: str) -> None:
        """`photo`: photo_type, checklist_item_id, description, file, thumbnail, size_bytes, width, height,
        taken_at. The sequence number counts per type; the first live photo of a type is its primary."""
        self.require_worker(actor_id, actor_role)
        self.require_photos_open()
        if photo["checklist_item_id"] is not None:
            self.checklist_item(photo["checklist_item_id"])
        # Numbers are never reused, even after deletions: they name photos in reports and conversations.
        sequence = self.photo_sequences.get(photo["photo_type"], 0) + 1
        has_primary = any(p["photo_type"] == photo["photo_type"] for p in self.photos.values())
        self._photo_added(photo_id, photo, sequence, not has_primary, actor_id)

    @event("PhotoAdded")
    def _photo_added(
        self, photo_id: int, photo: dict[str, Any], sequence_number: int, is_primary: bool, actor_id: int
    ) -> None:
        self.photo_sequences = {**self.photo_sequences, photo["photo_type"]: sequence_number}
        self.photos = {
            **self.photos,
            photo_id: {
                "photo_type": photo["photo_type"],
                "checklist_item_id": photo["checklist_item_id"],
                "status": "pending",
                "uploaded_by": actor_id,
                "sequence_number": sequence_number,
                "is_primary": is_primary,
            },
        }

    def photo(self, photo_id: int) -> dict[str, Any]:
        self._require_live()
        photo = self.photos.get(photo_id)
        if photo is None:
            raise NotFound(f"photo {photo_id}")
        return photo

    def review_photo(self, photo_id: int, status: str, note: str, actor_id: int, actor_role: str) -> None:
        require_admin(actor_role)
        photo = self.photo(photo_id)
        problems = field_problems({"photo_status": status, "review_note": note}, REVIEW_CHECKS)
        if problems:
            raise ValidationFailed(problems)
        if photo["status"] != status or note:
            self._photo_reviewed(photo_id, status, note, actor_id)

    @event("PhotoReviewed")
    def _photo_reviewed(self, photo_id: int, status: str, note: str, actor_id: int) -> None:
        self.photos = {**self.photos, photo_id: {**self.photos[photo_id], "status": status}}

    def require_photos_open(self) -> None:
        """A completed or canceled task's photos are its record, frozen as its checklist is: a manager's review
        (approve, reject, archive) is the only change left."""
        if self.status not in OPEN_STATUSES:
            raise ValidationFailed.one("task", f"The photos of a {self.status} task cannot be added or deleted.")

    def delete_photo(self, photo_id: int, actor_id: int, actor_role: str) -> None:
        photo = self.photo(photo_id)
        if actor_role not in ADMIN_ROLES and photo["uploaded_by"] != actor_id:
            raise PermissionDenied("only the uploader or a manager may delete a photo")
        self.require_photos_open()
        # The next photo of the type (lowest sequence number) becomes primary in the deleted one's place.
        successor = None
        if photo["is_primary"]:
            rest = [
                (p["sequence_number"], pid)
                for pid, p in self.photos.items()
                if pid != photo_id and p["photo_type"] == photo["photo_type"]
            ]
            successor = min(rest)[1] if rest else None
        self._photo_deleted(photo_id, successor, actor_id)

    @event("PhotoDeleted")
    def _photo_deleted(self, photo_id: int, new_primary_id: int | None, actor_id: int) -> None:
        photos = {pid: p for pid, p in self.photos.items() if pid != photo_id}
        if new_primary_id is not None:
            photos[new_primary_id] = {**photos[new_primary_id], "is_primary": True}
        self.photos = photos

    # -- checklist ---------------------------------------------------------------------------------------------------

    def checklist_item(self, item_id: int) -> dict[str, Any]:
        self._require_live()
        for item in (self.checklist or {}).get("items", []):
            if item["id"] == item_id:
                return item
        raise NotFound(f"checklist item {item_id}")

    def update_item(self, item_id: int, changes: dict[str, Any], actor_id: int, actor_role: str) -> None:
        item = self.checklist_item(item_id)
        self.require_worker(actor_id, actor_role)
        if self.status not in OPEN_STATUSES:
            raise ValidationFailed.one("status", f"The checklist of a {self.status} task cannot be changed.")
        notes_problems = check_text(changes.get("notes", ""), NOTES_MAX, multiline=True)
        if notes_problems:
            raise ValidationFailed({"notes": notes_problems})
        if "value" in changes and changes["value"] is not None:
            changes["value"] = _item_value(item, changes["value"])
        state = self.item_states.get(item_id, {})
        changes = {k: v for k, v in changes.items() if state.get(k, _EMPTY[k]) != v}
        if changes:
            self._item_updated(item_id, changes, actor_id)

    @event("ChecklistItemUpdated")
    def _item_updated(self, item_id: int, changes: dict[str, Any], actor_id: int) -> None:
        state = {**self.item_states.get(item_id, _EMPTY), **changes}
        if "completed" in changes:
            state["completed_by"] = actor_id if changes["completed"] else None
        self.item_states = {**self.item_states, item_id: state}


_EMPTY: dict[str, Any] = {"completed": False, "value": None, "notes": "", "completed_by": None}


def _item_value(item: dict[str, Any], value: Any) -> str:
    """Values are kept as text; a number item's must parse as a number."""
    if isinstance(value, bool) or (isinstance(value, int) and check_int(value)):
        raise ValidationFailed.one("value", f"Enter text of at most {VALUE_MAX} characters, or a 64-bit number.")
    text = str(value).strip()
    problems = check_text(text, VALUE_MAX, multiline=True)
    if problems:
        raise ValidationFailed({"value": problems})
    if item["item_type"] == "number_input":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValidationFailed.one("value", "A number is required for this item.")
    return text
