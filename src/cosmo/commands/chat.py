"""Chat commands. The room decides membership and who may; a message is created beside the room it is sent to
(the room is read, not written, so senders never clash with each other); membership changes write a system message
in the same save, so the conversation shows them exactly when they happened.

Every decision here is made on version-checked copies (`checked=True`): a room is read far more often than it
is saved, and a copy cached by this process before another process removed someone must not let them write.

Read markers move to a log position, which only the read side knows (a message's position is the place its
event got in the log): `Locator` answers that from the chat projection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID, uuid4

import anyio.to_thread

from cosmo.commands.base import Commands, Outcome, Session
from cosmo.commands.tasks import live_task
from cosmo.domain.actors import Actor
from cosmo.domain.chat import (
    ChatMessage,
    ChatRoom,
    ReadMarker,
    check_content,
    client_message_id,
    direct_room_id,
    marker_id,
    room_problems,
)
from cosmo.domain.checks import check_moment, utc
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import User
from cosmo.domain.ids import aggregate_id
from cosmo.domain.properties import Property
from cosmo.media.attachments import classify
from cosmo.media.store import MediaStore
from cosmo.storage.event_store import EventStore
from cosmo.storage.ids import IdAllocator

T = TypeVar("T")


class Locator(Protocol):
    async def latest_message(self, room_id: UUID) -> tuple[int, UUID] | None:
        """The room's newest message: its log position and id."""

    async def message_position(self, message_id: UUID) -> tuple[UUID, int] | None:
        """A message's room and log position."""


@dataclass(frozen=True)
class Upload:
    raw: bytes
    filename: str


@dataclass(frozen=True)
class Sent:
    message_id: UUID
    created: bool  # False: a retried send of a message already stored (same client_message_id)


def _name(user: User) -> str:
    return f"{user.first_name} {user.last_name}".strip() or user.username


async def _user(s: Session, user_id: int, field: str) -> User:
    user = await s.get(aggregate_id("user", user_id), User)
    if user is None or not user.is_active:
        raise ValidationFailed.one(field, f'Invalid pk "{user_id}" - object does not exist.')
    return user


async def room_of(s: Session, room_id: UUID, actor: Actor) -> ChatRoom:
    """The room a command acts on, if `actor` is in it (404 otherwise, as the reads answer)."""
    room = await s.get(room_id, ChatRoom)
    if room is None:
        raise NotFound(f"room {room_id}")
    room.require_member(actor.id)
    return room


def system_message(room: ChatRoom, actor: Actor, content: str) -> ChatMessage:
    return ChatMessage(
        message_id=uuid4(),
        room_id=room.id,
        sender_id=actor.id,
        message_type="system",
        content=content,
        reply_to=None,
        attachment=None,
        client_message_id=None,
    )


class ChatCommands(Commands):
    def __init__(self, store: EventStore, ids: IdAllocator, media: MediaStore, locate: Locator):
        super().__init__(store, ids)
        self.media = media
        self.locate = locate

    # -- rooms ------------------------------------------------------------------------------------------------------

    async def create_room(self, actor: Actor, fields: dict[str, Any]) -> Outcome[tuple[UUID, bool]]:
        """`fields`: room_type, name, task_id, property_id, participant_ids. A direct room that exists already is
        answered with (its id, False), its creator back in it if they had left."""
        others = [u for u in dict.fromkeys(fields["participant_ids"]) if u != actor.id]
        fields = {**fields, "participant_ids": others}
        problems = room_problems(fields)
        if problems:
            raise ValidationFailed(problems)
        kind = fields["room_type"]
        room_id = direct_room_id(actor.id, others[0]) if kind == "direct" else uuid4()
        participant_ids = await self.ids.block("chat_participant", len(others) + 1)

        async def decide(s: Session) -> tuple[UUID, bool]:
            name = fields["name"].strip()
            await s.prefetch([aggregate_id("user", u) for u in others])
            for user_id in others:
                await _user(s, user_id, "participant_ids")
            if kind == "direct":
                existing = await s.get(room_id, ChatRoom)
                if existing is not None:
                    if not existing.is_member(actor.id) and existing.is_active:
                        existing.add(actor.id, participant_ids[0], False, actor.id)
                        s.add(system_message(existing, actor, f"{_name(await _user(s, actor.id, 'user'))} rejoined"))
                    return room_id, False
                name = ""
            if kind == "task":
                try:
                    task = await live_task(s, fields["task_id"], actor)
                except NotFound:
                    raise ValidationFailed.one(
                        "task", f'Invalid pk "{fields["task_id"]}" - object does not exist.'
                    ) from None
                name = name or task.title
            if kind == "property":
                prop = await s.get(aggregate_id("property", fields["property_id"]), Property)
                if prop is None or prop.is_archived:
                    raise ValidationFailed.one(
                        "property", f'Invalid pk "{fields["property_id"]}" - object does not exist.'
                    )
                name = name or prop.name
            room = ChatRoom(
                room_id=room_id,
                room_type=kind,
                name=name,
                task_id=fields.get("task_id") if kind == "task" else None,
                property_id=fields.get("property_id") if kind == "property" else None,
                participants=[
                    {"user_id": u, "participant_id": participant_ids[n], "is_admin": u == actor.id}
                    for n, u in enumerate([actor.id, *others])
                ],
                actor_id=actor.id,
            )
            s.add(room)
            return room_id, True

        return await self._found_or_made(await self.execute(decide, retry=True, checked=True), lambda r: r[1])

    async def _found_or_made(self, done: Outcome[T], made: Callable[[T], bool]) -> Outcome[T]:
        """A create that found its object already made (a retry, a second creator) wrote nothing, so has no position
        to wait for; it waits for the log's head instead, so the answer read back shows what it found."""
        if made(done.result) or done.position:
            return done
        return Outcome(done.result, await self.store.head())

    async def archive(self, actor: Actor, room_id: UUID) -> Outcome[None]:
        async def decide(s: Session) -> None:
            room = await room_of(s, room_id, actor)
            room.archive(actor.id)
            s.add(system_message(room, actor, f"{_name(await _user(s, actor.id, 'user'))} archived the room"))

        return await self.execute(decide, retry=False, checked=True)

    # -- participants -----------------------------------------------------------------------------------------------

    async def add_participant(self, actor: Actor, room_id: UUID, user_id: int, is_admin: bool) -> Outcome[int]:
        participant_id = await self.ids.next("chat_participant")

        async def decide(s: Session) -> int:
            room = await room_of(s, room_id, actor)
            room.require_admin(actor.id)
            user = await _user(s, user_id, "user")
            room.add(user_id, participant_id, is_admin, actor.id)
            by = _name(await _user(s, actor.id, "user"))
            s.add(system_message(room, actor, f"{by} added {_name(user)}"))
            return room.participants[user_id]["id"]

        return await self.execute(decide, retry=True, checked=True)

    async def remove_participant(self, actor: Actor, room_id: UUID, user_id: int) -> Outcome[None]:
        if user_id == actor.id:
            return await self.leave(actor, room_id, None)

        async def decide(s: Session) -> None:
            room = await room_of(s, room_id, actor)
            room.remove(user_id, actor.id)
            user = await s.get(aggregate_id("user", user_id), User)
            by = _name(await _user(s, actor.id, "user"))
            s.add(system_message(room, actor, f"{by} removed {_name(user) if user else f'user {user_id}'}"))

        return await self.execute(decide, retry=True, checked=True)

    async def leave(self, actor: Actor, room_id: UUID, new_admin: int | None) -> Outcome[None]:
        async def decide(s: Session) -> None:
            room = await room_of(s, room_id, actor)
            room.leave(actor.id, new_admin)
            s.add(system_message(room, actor, f"{_name(await _user(s, actor.id, 'user'))} left the room"))

        return await self.execute(decide, retry=True, checked=True)

    async def mute(
        self, actor: Actor, room_id: UUID, user_id: int, muted: bool, until: datetime | None
    ) -> Outcome[None]:
        if until is not None:
            if check_moment(until):
                raise ValidationFailed({"muted_until": check_moment(until)})
            until = utc(until)

        async def decide(s: Session) -> None:
            (await room_of(s, room_id, actor)).mute(user_id, actor.id, muted, until)

        return await self.execute(decide, retry=True, checked=True)

    # -- messages ---------------------------------------------------------------------------------------------------

    async def send(
        self,
        actor: Actor,
        room_id: UUID,
        content: str,
        reply_to: UUID | None = None,
        client_id: UUID | None = None,
        upload: Upload | None = None,
    ) -> Outcome[Sent]:
        problems = check_content(content, upload is not None)
        if problems:
            raise ValidationFailed({"content": problems})
        message_id = uuid4() if client_id is None else client_message_id(room_id, actor.id, client_id)
        attachment = None
        if upload is not None:
            # Refuse early (before decoding megabytes) whoever may not write here.
            room = await room_of(self.peek(checked=True), room_id, actor)
            room.require_open()
            found = await anyio.to_thread.run_sync(classify, upload.raw)
            file = self.media.chat_name(room_id, message_id, found.extension)
            await anyio.to_thread.run_sync(self.media.save, file, found.data)
            attachment = {"file": file, "name": upload.filename, "size": len(found.data), "kind": found.kind}

        async def decide(s: Session) -> Sent:
            room = await room_of(s, room_id, actor)
            if client_id is not None and await s.get(message_id, ChatMessage) is not None:
                return Sent(message_id, False)
            room.require_open()
            if reply_to is not None:
                replied = await s.get(reply_to, ChatMessage)
                if replied is None or replied.room_id != room_id:
                    raise ValidationFailed.one("reply_to", "Reply to a message of the same room.")
            s.add(
                ChatMessage(
                    message_id=message_id,
                    room_id=room_id,
                    sender_id=actor.id,
                    message_type="text" if attachment is None else attachment["kind"],
                    content=content,
                    reply_to=reply_to,
                    attachment=attachment,
                    client_message_id=client_id,
                )
            )
            return Sent(message_id, True)

        try:
            done = await self.execute(decide, retry=True, checked=True)
        except BaseException:
            if attachment is not None:
                self.media.delete(attachment["file"])
            raise
        if attachment is not None and not done.result.created:
            self.media.delete(attachment["file"])  # the retry's copy: the first send's file is the message's
        return await self._found_or_made(done, lambda sent: sent.created)

    async def _message(self, s: Session, message_id: UUID, actor: Actor) -> tuple[ChatMessage, ChatRoom]:
        message = await s.get(message_id, ChatMessage)
        if message is None:
            raise NotFound(f"message {message_id}")
        return message, await room_of(s, message.room_id, actor)

    async def edit(self, actor: Actor, message_id: UUID, content: str) -> Outcome[None]:
        async def decide(s: Session) -> None:
            message, room = await self._message(s, message_id, actor)
            room.require_open()
            message.edit(content, actor.id)

        return await self.execute(decide, retry=False, checked=True)

    async def delete(self, actor: Actor, message_id: UUID) -> Outcome[None]:
        async def decide(s: Session) -> None:
            message, room = await self._message(s, message_id, actor)
            message.delete(actor.id, room.is_admin(actor.id))

        return await self.execute(decide, retry=True, checked=True)

    # -- reading ----------------------------------------------------------------------------------------------------

    async def mark_room_read(self, actor: Actor, room_id: UUID) -> Outcome[None]:
        """Read up to the room's newest message."""
        latest = await self.locate.latest_message(room_id)
        return await self._read_up_to(actor, room_id, *(latest or (0, None)))

    async def mark_message_read(self, actor: Actor, message_id: UUID, in_room: UUID | None = None) -> Outcome[UUID]:
        """Read up to this message (and so every older one of its room; `in_room`: only if it is that room's).
        The message's room is the result."""
        found = await self.locate.message_position(message_id)
        if found is None or (in_room is not None and found[0] != in_room):
            raise NotFound(f"message {message_id}")
        room_id, position = found
        done = await self._read_up_to(actor, room_id, position, message_id)
        return Outcome(room_id, done.position)

    async def _read_up_to(self, actor: Actor, room_id: UUID, position: int, message_id: UUID | None) -> Outcome[None]:
        async def decide(s: Session) -> None:
            await room_of(s, room_id, actor)
            if message_id is None:  # nothing said in the room yet: nothing to mark
                return
            marker = await s.get(marker_id(room_id, actor.id), ReadMarker)
            if marker is None:
                s.add(ReadMarker(room_id=room_id, user_id=actor.id, up_to=position, message_id=message_id))
            else:
                marker.move(position, message_id)

        return await self.execute(decide, retry=True, queue_on=marker_id(room_id, actor.id), checked=True)
