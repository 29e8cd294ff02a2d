"""Team chat over REST: rooms, messages and participants (the chat contract). Rooms the caller is not an active
participant of answer 404, as do their messages and participants."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from cosmo.api.deps import Context
from cosmo.api.pages import Page
from cosmo.api.params import (
    BoolParam,
    PageParam,
    PageSizeParam,
    SearchParam,
    boolean,
    choice,
    choices,
    described,
    ordering_param,
    page_request,
    text,
)
from cosmo.api.wire import Id, one_of
from cosmo.api.wire import text as max_text
from cosmo.commands.chat import Upload
from cosmo.domain.chat import (
    ATTACHMENT_MAX_BYTES,
    CONTENT_MAX,
    MAX_PARTICIPANTS,
    ROOM_NAME_MAX,
    ROOM_TYPES,
    SENDABLE_TYPES,
    attachment_name,
)
from cosmo.domain.checks import check_choice
from cosmo.domain.errors import Conflict, NotFound, ValidationFailed
from cosmo.projections.chat.queries import DEFAULT_MESSAGE_PAGE, MESSAGE_ORDERING, RoomFilters
from cosmo.projections.chat.shapes import MessageOut, ParticipantOut, RoomOut, RoomStats, RoomSummary

SEND_BODY_LIMIT = ATTACHMENT_MAX_BYTES + 256 * 1024
RoomParam = Annotated[str | None, described("The room's id (a UUID).", maxLength=36)]
RequiredRoomParam = Annotated[str | None, described("The room's id (a UUID); required.", maxLength=36)]
RoomTypeParam = Annotated[str | None, choices("Only rooms of this type.", ROOM_TYPES)]
MessageOrdering = ordering_param(MESSAGE_ORDERING, "-created_at")
QueryParam = Annotated[str | None, described("Text to look for, at least 3 characters.", maxLength=200)]


class Said(msgspec.Struct):
    message: str


class CreateRoomRequest(msgspec.Struct, forbid_unknown_fields=True):
    room_type: one_of(ROOM_TYPES)
    participant_ids: Annotated[list[Id], msgspec.Meta(max_length=MAX_PARTICIPANTS)] = []
    name: max_text(ROOM_NAME_MAX) = ""
    task: Id | None = None
    property: Id | None = None


class LeaveRequest(msgspec.Struct, forbid_unknown_fields=True):
    new_admin: Id | None = None


class SendRequest(msgspec.Struct, forbid_unknown_fields=True):
    room: str
    content: max_text(CONTENT_MAX) = ""
    message_type: one_of(SENDABLE_TYPES) = "text"
    reply_to: str | None = None
    client_message_id: str | None = None


class EditRequest(msgspec.Struct, forbid_unknown_fields=True):
    content: max_text(CONTENT_MAX)


class AddParticipantRequest(msgspec.Struct, forbid_unknown_fields=True):
    room: str
    user: Id
    is_admin: bool = False


class MuteRequest(msgspec.Struct, forbid_unknown_fields=True):
    muted: bool
    muted_until: datetime | None = None


def _send_body() -> dict[str, Any]:
    """The send endpoint's body as the document shows it: JSON, or a form with the attachment."""
    uuid = {"type": "string", "format": "uuid"}
    fields: dict[str, Any] = {
        "room": uuid,
        "content": {"type": "string", "maxLength": CONTENT_MAX},
        "message_type": {"type": "string", "enum": list(SENDABLE_TYPES)},
        "reply_to": {"anyOf": [uuid, {"type": "null"}]},
        "client_message_id": {"anyOf": [uuid, {"type": "null"}]},
    }
    form = {**fields, "reply_to": uuid, "client_message_id": uuid, "attachment": {"type": "string", "format": "binary"}}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": fields, "required": ["room"], "additionalProperties": False}
            },
            "multipart/form-data": {"schema": {"type": "object", "properties": form, "required": ["room"]}},
        },
    }


def room_id(raw: str | None) -> UUID:
    """A room named in a URL: no UUID, no room."""
    try:
        return UUID(str(raw))
    except ValueError:
        raise NotFound("room") from None


def required_room(raw: str | None) -> UUID:
    if not raw:
        raise ValidationFailed.one("room", "This field is required.")
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationFailed.one("room", "Must be a valid UUID.") from None


def optional_uuid(field: str, raw: str | None) -> UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise ValidationFailed.one(field, "Must be a valid UUID.") from None


def message_id(raw: str) -> UUID:
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound("message") from None


MISSING = re.compile(r"missing required field `([^`]+)`")
AT_FIELD = re.compile(r"^(.*) - at `\$\.([A-Za-z_]+)")


def _decode(body: bytes, kind: type[Any]) -> Any:
    """A body this handler decodes itself, with msgspec's complaint put on the field it names."""
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if missing := MISSING.search(text):
            raise ValidationFailed.one(missing.group(1), "This field is required.") from None
        if at := AT_FIELD.match(text):
            raise ValidationFailed.one(at.group(2), at.group(1)) from None
        raise ValidationFailed.one("non_field_errors", text) from None
    except msgspec.DecodeError:
        raise ValidationFailed.one("non_field_errors", "The body is not valid JSON.") from None


class ChatRoomsController(Controller):
    path = "/api/chat/rooms"
    tags = ["chat"]

    @get("/", summary="Rooms the caller is an active participant of (most recently active first)")
    async def list_rooms(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        room_type: RoomTypeParam = None,
        search: SearchParam = None,
        include_archived: BoolParam = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[RoomSummary]:
        filters = RoomFilters(
            room_type=choice("room_type", room_type, ROOM_TYPES),
            search=text("search", search),
            include_archived=bool(boolean("include_archived", include_archived)),
        )
        found = await ctx.chat.rooms(ctx.actor, filters, page_request(page, page_size, None))
        return ctx.services.page(request, found)

    @post("/", status_code=201, summary="Create a room (a direct room that exists already is answered with 200)")
    async def create_room(self, data: JSONBody[CreateRoomRequest], ctx: NamedDependency[Context]) -> Response[RoomOut]:
        fields = {
            "room_type": data.room_type,
            "name": data.name,
            "participant_ids": data.participant_ids,
            "task_id": data.task,
            "property_id": data.property,
        }
        created_id, created = await ctx.services.run(ctx.chat_commands.create_room(ctx.actor, fields))
        return Response(await ctx.chat.room(ctx.actor, created_id), status_code=201 if created else 200)

    @get("/{room:str}/", summary="A room, with its participants and last message")
    async def get_room(self, room: FromPath[str], ctx: NamedDependency[Context]) -> RoomOut:
        return await ctx.chat.room(ctx.actor, room_id(room))

    @post("/{room:str}/mark_read/", status_code=200, summary="Mark every message of the room read")
    async def mark_read(self, room: FromPath[str], ctx: NamedDependency[Context]) -> Said:
        await ctx.services.run(ctx.chat_commands.mark_room_read(ctx.actor, room_id(room)))
        return Said("Room marked as read")

    @post(
        "/{room:str}/leave/",
        status_code=200,
        summary="Leave the room (its last admin names the next: new_admin)",
        opt={
            "request_body": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"new_admin": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
                            "additionalProperties": False,
                        }
                    }
                },
            }
        },
    )
    async def leave(self, request: Request[Any, Any, Any], room: FromPath[str], ctx: NamedDependency[Context]) -> Said:
        data = _decode(await request.body(), LeaveRequest)
        await ctx.services.run(ctx.chat_commands.leave(ctx.actor, room_id(room), data.new_admin))
        return Said("Successfully left the room")

    @post("/{room:str}/archive/", status_code=200, summary="Archive the room (room admins)")
    async def archive(self, room: FromPath[str], ctx: NamedDependency[Context]) -> RoomOut:
        await ctx.services.run(ctx.chat_commands.archive(ctx.actor, room_id(room)))
        return await ctx.chat.room(ctx.actor, room_id(room))

    @get("/{room:str}/stats/", summary="The room's message, participant and unread counts")
    async def stats(self, room: FromPath[str], ctx: NamedDependency[Context]) -> RoomStats:
        return await ctx.chat.stats(ctx.actor, str(room_id(room)))


class ChatMessagesController(Controller):
    path = "/api/chat/messages"
    tags = ["chat"]

    @get("/", summary="A room's messages (newest first unless ordering=created_at)")
    async def list_messages(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        room: RequiredRoomParam = None,
        ordering: MessageOrdering = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[MessageOut]:
        wanted = page_request(page, page_size, ordering, DEFAULT_MESSAGE_PAGE)
        found = await ctx.chat.messages(ctx.actor, str(required_room(room)), wanted)
        return ctx.services.page(request, found)

    @post(
        "/",
        status_code=201,
        summary="Send a message (JSON, or multipart with an attachment up to 25 MB)",
        request_max_body_size=SEND_BODY_LIMIT,
        opt={"request_body": _send_body()},
    )
    async def send(self, request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> MessageOut:
        upload = None
        if request.content_type[0] == "multipart/form-data":
            form = await request.form()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            file = form.get("attachment")
            if isinstance(file, UploadFile):
                await ctx.services.throttle.hit("upload", str(ctx.actor.id), ctx.services.settings.throttle_upload)
                upload = Upload(await file.read(), attachment_name(file.filename or ""))
            data = _decode(msgspec.json.encode(fields), SendRequest)
        else:
            data = _decode(await request.body(), SendRequest)
        problems = check_choice(data.message_type, SENDABLE_TYPES)
        if problems:
            raise ValidationFailed({"message_type": problems})
        sent = await ctx.services.run(
            ctx.chat_commands.send(
                ctx.actor,
                required_room(data.room),
                data.content,
                reply_to=optional_uuid("reply_to", data.reply_to),
                client_id=optional_uuid("client_message_id", data.client_message_id),
                upload=upload,
            )
        )
        try:
            return await ctx.chat.message(ctx.actor, sent.message_id)
        except NotFound:
            # Decided while the sender was in an open room, but the log put it after their removal or the room's
            # archiving: the room does not show it.
            raise Conflict(
                "The room changed while the message was sent (it was archived, or you are no longer in it); "
                "it was not posted."
            ) from None

    @get("/search/", summary="Search messages of the caller's rooms (q: at least 3 characters)")
    async def search(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        q: QueryParam = None,
        room: RoomParam = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[MessageOut]:
        in_room = None if not room else str(required_room(room))
        wanted = page_request(page, page_size, None, DEFAULT_MESSAGE_PAGE)
        found = await ctx.chat.search(ctx.actor, text("q", q), in_room, wanted)
        return ctx.services.page(request, found)

    @get("/{message:str}/", summary="A message")
    async def get_message(self, message: FromPath[str], ctx: NamedDependency[Context]) -> MessageOut:
        return await ctx.chat.message(ctx.actor, message_id(message))

    @patch("/{message:str}/", summary="Edit a message (its sender)")
    async def edit(
        self, message: FromPath[str], data: JSONBody[EditRequest], ctx: NamedDependency[Context]
    ) -> MessageOut:
        await ctx.services.run(ctx.chat_commands.edit(ctx.actor, message_id(message), data.content))
        return await ctx.chat.message(ctx.actor, message_id(message))

    @delete("/{message:str}/", status_code=204, summary="Delete a message (its sender or a room admin)")
    async def remove(self, message: FromPath[str], ctx: NamedDependency[Context]) -> None:
        await ctx.services.run(ctx.chat_commands.delete(ctx.actor, message_id(message)))

    @post("/{message:str}/mark_read/", status_code=200, summary="Mark a message (and every older one) read")
    async def mark_read(self, message: FromPath[str], ctx: NamedDependency[Context]) -> Said:
        await ctx.services.run(ctx.chat_commands.mark_message_read(ctx.actor, message_id(message)))
        return Said("Message marked as read")


class ChatParticipantsController(Controller):
    path = "/api/chat/participants"
    tags = ["chat"]

    @get("/", summary="A room's active participants")
    async def list_participants(
        self,
        request: Request[Any, Any, Any],
        ctx: NamedDependency[Context],
        room: RequiredRoomParam = None,
        page: PageParam = None,
        page_size: PageSizeParam = None,
    ) -> Page[ParticipantOut]:
        found = await ctx.chat.participants(ctx.actor, str(required_room(room)), page_request(page, page_size, None))
        return ctx.services.page(request, found)

    @post("/", status_code=201, summary="Add a participant (room admins)")
    async def add(self, data: JSONBody[AddParticipantRequest], ctx: NamedDependency[Context]) -> ParticipantOut:
        added = await ctx.services.run(
            ctx.chat_commands.add_participant(ctx.actor, required_room(data.room), data.user, data.is_admin)
        )
        return await ctx.chat.participant(ctx.actor, added)

    @delete("/{participant:int}/", status_code=204, summary="Remove a participant (room admins; yourself: leave)")
    async def remove(self, participant: FromPath[int], ctx: NamedDependency[Context]) -> None:
        found = await ctx.chat.participant(ctx.actor, participant)
        await ctx.services.run(ctx.chat_commands.remove_participant(ctx.actor, UUID(found.room), found.user.id))

    @post("/{participant:int}/mute/", status_code=200, summary="Mute or unmute your own notifications of a room")
    async def mute(
        self, participant: FromPath[int], data: JSONBody[MuteRequest], ctx: NamedDependency[Context]
    ) -> ParticipantOut:
        found = await ctx.chat.participant(ctx.actor, participant)
        await ctx.services.run(
            ctx.chat_commands.mute(ctx.actor, UUID(found.room), found.user.id, data.muted, data.muted_until)
        )
        return await ctx.chat.participant(ctx.actor, participant)
