"""Team chat: rooms (membership and settings), messages (each its own aggregate, so a room's stream does not grow
with its conversation), and read markers (one per participant and room: "read up to" a log position, so reading
is one event per mark, not one per message, and readers never clash with the room's writers).

Who may do what is decided here: only active participants see a room or write in it; room admins add, remove and
archive; only a message's sender edits it; the sender or a room admin deletes it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from cosmo.domain.checks import check_choice, check_text, clean_text, field_problems
from cosmo.domain.errors import NotFound, PermissionDenied, ValidationFailed
from cosmo.domain.ids import NAMESPACE, SNAPSHOT_EVERY

ROOM_TYPES = ("direct", "group", "task", "property")
MESSAGE_TYPES = ("text", "image", "file", "system")
# What a client may say it sends; the server decides image or file from an attachment, and writes system messages.
SENDABLE_TYPES = ("text", "image", "file")
ROOM_NAME_MAX = 200
CONTENT_MAX = 10_000
ATTACHMENT_NAME_MAX = 255
MAX_PARTICIPANTS = 500
DELETED_CONTENT = "[Message deleted]"
ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
# Characters that reorder or hide what follows: in a file name they disguise one type as another
# ("invoice\u202etxt.exe" shows as "invoiceexe.txt").
_DISGUISING = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def direct_room_id(a: int, b: int) -> UUID:
    """One direct room per pair of users: its id is the pair's, so a second creator collides on it."""
    low, high = sorted((a, b))
    return uuid5(NAMESPACE, f"chat-direct:{low}:{high}")


def client_message_id(room_id: UUID, sender_id: int, client_id: UUID) -> UUID:
    """A message's id when its client named it: a retried send is the same aggregate, so it is never stored twice.
    Scoped to sender and room, so nobody can take another's id."""
    return uuid5(NAMESPACE, f"chat-message:{room_id}:{sender_id}:{client_id}")


def marker_id(room_id: UUID, user_id: int) -> UUID:
    return uuid5(NAMESPACE, f"chat-read:{room_id}:{user_id}")


def attachment_name(raw: str) -> str:
    """The name an attachment is shown and downloaded with: its last path part, without control characters or
    characters that disguise it, at most ATTACHMENT_NAME_MAX long."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = _DISGUISING.sub("", clean_text(name)).strip()
    return name[:ATTACHMENT_NAME_MAX] or "attachment"


def check_content(content: str, has_attachment: bool) -> list[str]:
    problems = check_text(content, CONTENT_MAX, multiline=True)
    if not problems and not has_attachment and not content.strip():
        problems = ["This field may not be blank."]
    return problems


def room_problems(fields: dict[str, Any]) -> dict[str, list[str]]:
    problems = field_problems(
        fields,
        {
            "room_type": lambda v: check_choice(v, ROOM_TYPES),
            "name": lambda v: check_text(v, ROOM_NAME_MAX),
        },
    )
    kind, name = fields.get("room_type"), fields.get("name", "")
    if kind == "group" and "name" not in problems and not name.strip():
        problems["name"] = ["A group room needs a name."]
    if kind == "task" and fields.get("task_id") is None:
        problems["task"] = ["A task room needs its task."]
    if kind == "property" and fields.get("property_id") is None:
        problems["property"] = ["A property room needs its property."]
    if kind == "direct" and len(fields.get("participant_ids", ())) != 1:
        problems["participant_ids"] = ["A direct room is between you and exactly one other user."]
    if len(fields.get("participant_ids", ())) >= MAX_PARTICIPANTS:
        problems["participant_ids"] = [f"A room has at most {MAX_PARTICIPANTS} participants."]
    return problems


def _joined(participant_id: int, is_admin: bool) -> dict[str, Any]:
    return {"id": participant_id, "is_admin": is_admin, "active": True, "is_muted": False, "muted_until": None}


class ChatRoom(Aggregate):
    """A room's membership and settings. `participants` maps user id -> {"id" (the participant's id), "is_admin",
    "active", "is_muted", "muted_until"}; those who left or were removed stay, inactive, and keep their id."""

    snapshot_every = SNAPSHOT_EVERY
    # Events replace `participants` (and the entry they change) rather than change them in place, so a cached room
    # is handed out as a shallow copy (see `storage.event_store.copy_of`): every send reads its room, and
    # unpickling a 200-member room for each one cost more than the send itself.
    shallow_copies = True

    @staticmethod
    def create_id(room_id: UUID) -> UUID:
        return room_id

    @event("Created")
    def __init__(
        self,
        room_id: UUID,
        room_type: str,
        name: str,
        task_id: int | None,
        property_id: int | None,
        participants: list[dict[str, Any]],
        actor_id: int,
    ):
        self.room_type = room_type
        self.name = name
        self.task_id = task_id
        self.property_id = property_id
        self.created_by = actor_id
        self.is_active = True
        self.participants: dict[int, dict[str, Any]] = {
            p["user_id"]: _joined(p["participant_id"], p["is_admin"]) for p in participants
        }

    def _changed(self, user_id: int, **changes: Any) -> None:
        """Replace one participant's entry (and the mapping holding it): copies handed out keep theirs."""
        self.participants = {**self.participants, user_id: {**self.participants[user_id], **changes}}

    # -- who --------------------------------------------------------------------------------------------------------

    def is_member(self, user_id: int) -> bool:
        p = self.participants.get(user_id)
        return p is not None and p["active"]

    def is_admin(self, user_id: int) -> bool:
        return self.is_member(user_id) and self.participants[user_id]["is_admin"]

    def require_member(self, user_id: int) -> None:
        """A room the user is not in does not exist for them (404, as the reads answer)."""
        if not self.is_member(user_id):
            raise NotFound(f"room {self.id}")

    def require_admin(self, user_id: int) -> None:
        self.require_member(user_id)
        if not self.participants[user_id]["is_admin"]:
            raise PermissionDenied("room admins only")

    def require_open(self) -> None:
        if not self.is_active:
            raise ValidationFailed.one("room", "This room is archived.")

    def active_ids(self) -> list[int]:
        return [u for u, p in self.participants.items() if p["active"]]

    def participant_id(self, user_id: int) -> int | None:
        p = self.participants.get(user_id)
        return None if p is None else p["id"]

    # -- membership -------------------------------------------------------------------------------------------------

    def add(self, user_id: int, participant_id: int, is_admin: bool, actor_id: int) -> None:
        """A room admin adds `user_id` (back, with their old participant id, if they had left); `actor_id` may be
        the user themselves rejoining a direct room."""
        self.require_open()
        if self.room_type == "direct" and user_id not in self.participants:
            raise ValidationFailed.one("room", "A direct room is between two users; create a group room instead.")
        if self.is_member(user_id):
            raise ValidationFailed.one("user", "This user is already a participant.")
        if len(self.active_ids()) >= MAX_PARTICIPANTS:
            raise ValidationFailed.one("room", f"A room has at most {MAX_PARTICIPANTS} participants.")
        known = self.participant_id(user_id)
        self._added(user_id, participant_id if known is None else known, is_admin, actor_id)

    @event("ParticipantAdded")
    def _added(self, user_id: int, participant_id: int, is_admin: bool, actor_id: int) -> None:
        self.participants = {**self.participants, user_id: _joined(participant_id, is_admin)}

    def remove(self, user_id: int, actor_id: int) -> None:
        """A room admin removes someone else (removing oneself is leaving)."""
        self.require_admin(actor_id)
        if not self.is_member(user_id):
            raise NotFound(f"participant of user {user_id}")
        self._removed(user_id, actor_id)

    @event("ParticipantRemoved")
    def _removed(self, user_id: int, actor_id: int) -> None:
        self._changed(user_id, active=False)

    def leave(self, user_id: int, new_admin: int | None) -> None:
        """The last admin of a room others are still in names the admin who follows them."""
        self.require_member(user_id)
        others = [u for u in self.active_ids() if u != user_id]
        admins = [u for u in others if self.participants[u]["is_admin"]]
        if new_admin is not None and new_admin not in others:
            raise ValidationFailed.one("new_admin", "Name another active participant of this room.")
        if self.participants[user_id]["is_admin"] and others and not admins and new_admin is None:
            raise ValidationFailed.one(
                "new_admin", "You are this room's last admin: name the participant who becomes its admin."
            )
        self._left(user_id, new_admin)

    @event("ParticipantLeft")
    def _left(self, user_id: int, new_admin: int | None) -> None:
        self._changed(user_id, active=False)
        if new_admin is not None:
            self._changed(new_admin, is_admin=True)

    def archive(self, actor_id: int) -> None:
        self.require_admin(actor_id)
        self.require_open()
        self._archived(actor_id)

    @event("Archived")
    def _archived(self, actor_id: int) -> None:
        self.is_active = False

    def mute(self, user_id: int, actor_id: int, muted: bool, until: datetime | None) -> None:
        """Participants mute their own notifications, nobody else's."""
        self.require_member(actor_id)
        if not self.is_member(user_id):
            raise NotFound(f"participant of user {user_id}")
        if user_id != actor_id:
            raise PermissionDenied("only the participant may mute their notifications")
        until = until if muted else None
        p = self.participants[user_id]
        if (p["is_muted"], p["muted_until"]) != (muted, until):
            self._muted(user_id, muted, until)

    @event("MuteChanged")
    def _muted(self, user_id: int, muted: bool, muted_until: datetime | None) -> None:
        self._changed(user_id, is_muted=muted, muted_until=muted_until)


class ChatMessage(Aggregate):
    """One message. `attachment`: {"file", "name", "size", "content_type"} or None."""

    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(message_id: UUID) -> UUID:
        return message_id

    @event("Sent")
    def __init__(
        self,
        message_id: UUID,
        room_id: UUID,
        sender_id: int,
        message_type: str,
        content: str,
        reply_to: UUID | None,
        attachment: dict[str, Any] | None,
        client_message_id: UUID | None,
    ):
        self.room_id = room_id
        self.sender_id = sender_id
        self.message_type = message_type
        self.content = content
        self.reply_to = reply_to
        self.attachment = attachment
        self.client_message_id = client_message_id
        self.is_deleted = False

    def edit(self, content: str, actor_id: int) -> None:
        if actor_id != self.sender_id or self.message_type == "system":
            raise PermissionDenied("only the sender may edit a message")
        if self.is_deleted:
            raise ValidationFailed.one("content", "A deleted message cannot be edited.")
        problems = check_content(content, self.attachment is not None)
        if problems:
            raise ValidationFailed({"content": problems})
        if content != self.content:
            self._edited(self.room_id, content, actor_id)

    # The room rides along on later events too, so the read side needs no lookup to place them.
    @event("Edited")
    def _edited(self, room_id: UUID, content: str, actor_id: int) -> None:
        self.content = content

    def delete(self, actor_id: int, room_admin: bool) -> None:
        if actor_id != self.sender_id and not room_admin:
            raise PermissionDenied("only the sender or a room admin may delete a message")
        if not self.is_deleted:
            self._deleted(self.room_id, actor_id)

    @event("Deleted")
    def _deleted(self, room_id: UUID, actor_id: int) -> None:
        self.is_deleted = True
        self.content = DELETED_CONTENT
        self.attachment = None


class ReadMarker(Aggregate):
    """How far one participant has read one room: up to the message at log position `up_to`. It only moves on."""

    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(room_id: UUID, user_id: int) -> UUID:
        return marker_id(room_id, user_id)

    @event("Created")
    def __init__(self, room_id: UUID, user_id: int, up_to: int, message_id: UUID):
        self.room_id = room_id
        self.user_id = user_id
        self.up_to = up_to
        self.message_id = message_id

    def move(self, up_to: int, message_id: UUID) -> None:
        if up_to > self.up_to:
            # Room and user ride along, so the read side needs no lookup from the marker's id.
            self._moved(self.room_id, self.user_id, up_to, message_id)

    @event("Moved")
    def _moved(self, room_id: UUID, user_id: int, up_to: int, message_id: UUID) -> None:
        self.up_to = up_to
        self.message_id = message_id
