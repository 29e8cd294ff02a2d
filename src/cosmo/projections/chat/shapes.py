"""The chat contract's shapes: rooms, participants and messages over REST, and the WebSocket's pushes. Built from
the chat tables' rows here, so REST, live pushes and a resumed socket's replay say the same thing the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec

from cosmo.projections.chat.projection import CHAT_MESSAGE, DELETED, JOINED, LEFT, READ, UPDATED

MediaUrl = Callable[[str], str]
PREVIEW_MAX = 100


class UserBrief(msgspec.Struct):
    id: int
    username: str
    full_name: str
    email: str


class ParticipantOut(msgspec.Struct):
    id: int
    user: UserBrief
    room: str
    joined_at: datetime
    last_read_at: datetime | None
    is_admin: bool
    unread_count: int
    is_muted: bool
    muted_until: datetime | None
    left_at: datetime | None


class LastMessage(msgspec.Struct):
    id: str
    sender: UserBrief
    content: str
    message_type: str
    created_at: datetime
    is_edited: bool


class RoomSummary(msgspec.Struct):
    id: str
    name: str
    display_name: str
    room_type: str
    task: int | None
    property: int | None
    is_active: bool
    unread_count: int
    last_message_preview: str | None
    last_message_time: datetime | None
    participant_count: int
    modified_at: datetime


class RoomOut(msgspec.Struct):
    id: str
    name: str
    room_type: str
    task: int | None
    property: int | None
    created_at: datetime
    modified_at: datetime
    created_by: UserBrief | None
    is_active: bool
    archived_at: datetime | None
    participants: list[ParticipantOut]
    participant_count: int
    last_message: LastMessage | None
    unread_count: int
    display_name: str


class RoomStats(msgspec.Struct):
    message_count: int
    participant_count: int
    unread_count: int
    last_message_at: datetime | None


class MessageOut(msgspec.Struct):
    id: str
    room: str
    sender: UserBrief
    message_type: str
    content: str
    attachment: str | None
    attachment_name: str
    attachment_size: int | None
    reply_to: str | None
    client_message_id: str | None
    created_at: datetime
    modified_at: datetime
    is_edited: bool
    edited_at: datetime | None
    is_deleted: bool
    deleted_at: datetime | None
    is_read: bool
    read_count: int
    read_by: dict[str, datetime]


def full_name(row: dict[str, Any], prefix: str = "") -> str:
    first, last = row.get(f"{prefix}first_name") or "", row.get(f"{prefix}last_name") or ""
    return f"{first} {last}".strip() or (row.get(f"{prefix}username") or "")


def brief(row: dict[str, Any], id_key: str, prefix: str = "") -> UserBrief:
    """The user of `row[id_key]`, from the users columns joined as `prefix`username etc. (a user the users read
    model does not hold yet shows with empty names rather than failing the read)."""
    return UserBrief(
        id=int(row[id_key] or 0),
        username=row.get(f"{prefix}username") or "",
        full_name=full_name(row, prefix),
        email=row.get(f"{prefix}email") or "",
    )


def participant_out(row: dict[str, Any]) -> ParticipantOut:
    return ParticipantOut(
        id=row["participant_id"],
        user=brief(row, "user_id"),
        room=row["room_id"],
        joined_at=row["joined_at"],
        last_read_at=row["last_read_at"],
        is_admin=bool(row["is_admin"]),
        unread_count=int(row["unread_count"]),
        is_muted=bool(row["is_muted"]),
        muted_until=row["muted_until"],
        left_at=row["left_at"],
    )


Marker = tuple[int, int, datetime | None]  # (user id, read up to position, when)


def message_out(
    row: dict[str, Any], viewer: int, readers: Iterable[Marker], viewer_joined: int, media_url: MediaUrl
) -> MessageOut:
    """`readers`: the room's participants' read markers, from which `read_by`, `read_count` and `is_read`
    derive (a message is read by whoever's marker reached its position; its sender is not counted). For the viewer,
    what came before they joined is not unread either (`viewer_joined`: the position of their joining), as the
    unread counts have it."""
    position, sender = row["position"], row["sender_id"]
    read_by = {str(user): at for user, up_to, at in readers if up_to >= position and user != sender and at}
    return MessageOut(
        id=row["message_id"],
        room=row["room_id"],
        sender=brief(row, "sender_id"),
        message_type=row["message_type"],
        content=row["content"],
        attachment=media_url(row["attachment"]) if row["attachment"] else None,
        attachment_name=row["attachment_name"] if row["attachment"] else "",
        attachment_size=row["attachment_size"] if row["attachment"] else None,
        reply_to=row["reply_to"],
        client_message_id=row["client_message_id"],
        created_at=row["created_at"],
        modified_at=row["modified_at"],
        is_edited=bool(row["is_edited"]),
        edited_at=row["edited_at"],
        is_deleted=bool(row["is_deleted"]),
        deleted_at=row["deleted_at"],
        is_read=sender == viewer or str(viewer) in read_by or position <= viewer_joined,
        read_count=len(read_by),
        read_by=read_by,
    )


def preview(content: str | None) -> str | None:
    if content is None:
        return None
    return content if len(content) <= PREVIEW_MAX else content[: PREVIEW_MAX - 1] + "\u2026"


# -- the socket's pushes ---------------------------------------------------------------------------------------------


def socket_message(row: dict[str, Any], media_url: MediaUrl) -> dict[str, Any]:
    """A message as the socket's `chat_message` and `message_updated` carry it."""
    return {
        "id": row["message_id"],
        "room_id": row["room_id"],
        "sender": {"id": row["user_id"], "username": row["username"] or "", "full_name": full_name(row)},
        "content": row["content"],
        "message_type": row["message_type"],
        "reply_to_id": row["reply_to"],
        "created_at": row["created_at"],
        "is_edited": bool(row["is_edited"]),
        "edited_at": row["edited_at"],
        "is_deleted": bool(row["is_deleted"]),
        "attachment": media_url(row["attachment"]) if row["attachment"] else None,
        "attachment_name": row["attachment_name"] if row["attachment"] else "",
        "attachment_size": row["attachment_size"] if row["attachment"] else None,
        "client_message_id": row["client_message_id"],
    }


def push_of(row: dict[str, Any], media_url: MediaUrl) -> dict[str, Any]:
    """A log row as its push: the contract's event, with its log position as `cursor`."""
    kind, head = row["kind"], {"type": row["kind"], "cursor": row["position"]}
    if kind in (CHAT_MESSAGE, UPDATED):
        return {**head, "message": socket_message(row, media_url)}
    if kind == DELETED:
        return {**head, "message_id": row["message_id"], "room_id": row["room_id"], "deleted_at": row["at"]}
    if kind == READ:
        return {**head, "message_id": row["message_id"], "user_id": row["user_id"], "read_at": row["at"]}
    if kind == JOINED:
        return {
            **head,
            "room_id": row["room_id"],
            "participant_id": row["participant_id"],
            "user": msgspec.structs.asdict(brief(row, "user_id")),
            "is_admin": bool(row["is_admin"]),
        }
    if kind == LEFT:
        return {
            **head,
            "room_id": row["room_id"],
            "participant_id": row["participant_id"],
            "user_id": row["user_id"],
            "reason": row["detail"],
        }
    raise ValueError(f"unknown chat log kind {kind!r}")
