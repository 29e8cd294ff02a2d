"""The live push protocol in one place: channel names, who listens to what, and the wire shape of each push.

Projections announce effects (kind, payload) after a batch commits, saying only whom they concern: a notification
row (its user), the count scopes whose numbers changed, a user whose session ended. `messages` turns them into
(channel, message) pairs for the broker; a socket listens to `channels_for` its user and shapes what it sends
with the functions below.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from cosmo.domain.actors import Actor
from cosmo.domain.ids import aggregate_id
from cosmo.live.broker import OVERFLOWED
from cosmo.projections.chat.shapes import MediaUrl, push_of
from cosmo.projections.counts import TaskCounts, count_scopes
from cosmo.projections.notifications import notification_out

Effect = tuple[str, Any]
Message = tuple[str, dict[str, Any]]

NOTIFICATION, COUNTS_CHANGED, SESSION_ENDED = "notification", "task_counts_changed", "session_ended"
FELL_BEHIND = 1013  # "try again later": the socket could not keep up, and reconnecting loses nothing
CHAT = "chat"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def session_channel(user_uuid: UUID | str) -> str:
    return f"session:{user_uuid}"


def counts_channel(scope: str) -> str:
    return f"counts:{scope}"


def room_channel(room_id: str) -> str:
    """A chat room's pushes: its log's events (with their cursor) and typing (without: never stored)."""
    return f"room:{room_id}"


def typing(room_id: str, user_id: int, username: str, is_typing: bool) -> Message:
    return (
        room_channel(room_id),
        {"type": "typing", "room_id": room_id, "user_id": user_id, "username": username, "is_typing": is_typing},
    )


def room_channels_for(actor: Actor, room_id: str) -> list[str]:
    """What a chat socket listens to: its room, and the end of its user's session."""
    return [room_channel(room_id), session_channel(aggregate_id("user", actor.id))]


def channels_for(actor: Actor) -> list[str]:
    """What a user's socket listens to: their own notifications, the end of their session (deactivated, password
    changed), and the count scopes their visibility spans."""
    scopes = count_scopes(actor)
    return [
        user_channel(actor.id),
        session_channel(aggregate_id("user", actor.id)),
        *(counts_channel(s) for s in (["all"] if scopes is None else scopes)),
    ]


def kind_of(channel: str) -> str:
    """What a message on `channel` is, as a socket acts on it."""
    if channel == OVERFLOWED:
        return OVERFLOWED
    if channel.startswith("session:"):
        return SESSION_ENDED
    if channel.startswith("counts:"):
        return COUNTS_CHANGED
    if channel.startswith("room:"):
        return CHAT
    return NOTIFICATION


def messages(effects: list[Effect], media_url: MediaUrl) -> list[Message]:
    """A notification to its user, a nudge to every socket whose task counts may have changed (each recounts for
    its own user), the end of a user's session, and a chat room's events to its room (`media_url` signs their
    attachments' links)."""
    out: list[Message] = []
    scopes: set[str] = set()
    for kind, payload in effects:
        if kind == "notification":
            shown = msgspec.structs.asdict(notification_out(payload))
            out.append((user_channel(payload["user_id"]), {"type": "notification", **shown}))
        elif kind == "task_counts":
            scopes.update(payload)
        elif kind == "session_ended":
            out.append((session_channel(payload), {"type": SESSION_ENDED}))
        elif kind == CHAT:
            out.append((room_channel(payload["room_id"]), push_of(payload, media_url)))
    out += [(counts_channel(scope), {"type": COUNTS_CHANGED}) for scope in sorted(scopes)]
    return out


def counts_push(counts: TaskCounts) -> str:
    return msgspec.json.encode({"type": "task_counts", **msgspec.structs.asdict(counts)}).decode()
