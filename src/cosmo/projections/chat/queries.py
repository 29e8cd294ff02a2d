"""The chat read side's queries. Everything here answers only for rooms the asking user is an active participant
of: any other room, and its messages and participants, is a 404 (as if it did not exist)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from cosmo.domain.actors import Actor
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.projections.chat.projection import CHAT_MESSAGE, ChatProjection, log_sql
from cosmo.projections.chat.shapes import (
    LastMessage,
    Marker,
    MediaUrl,
    MessageOut,
    ParticipantOut,
    RoomOut,
    RoomStats,
    RoomSummary,
    brief,
    full_name,
    message_out,
    participant_out,
    preview,
)
from cosmo.projections.queries import PageRequest, Reader, Slice, like, order_clause, page_of

LIVE = {t.name: t.name for t in ChatProjection.tables}
SEARCH_MIN = 3
MESSAGE_ORDERING = {"created_at": "m.created_at", "position": "m.position"}
DEFAULT_MESSAGE_PAGE = 50

# Unread: newer than the participant's marker and their joining, written by someone else, not deleted.
UNREAD = (
    "SELECT count(*) FROM chat_messages_view m WHERE m.room_id = {p}.room_id AND m.position > {p}.read_up_to"
    " AND m.position > {p}.joined_position AND m.sender_id <> {p}.user_id AND NOT m.is_deleted"
)
ACTIVE_COUNT = "SELECT count(*) FROM chat_participants_view c WHERE c.room_id = r.room_id AND c.left_at IS NULL"
USER_COLUMNS = "u.username, u.first_name, u.last_name, u.email"
PARTICIPANT_SELECT = (
    "p.participant_id, p.room_id, p.user_id, p.is_admin, p.joined_at, p.left_at, p.is_muted, p.muted_until,"
    f" p.last_read_at, {USER_COLUMNS}, ({UNREAD.format(p='p')}) AS unread_count"
)
MESSAGE_SELECT = (
    "m.message_id, m.room_id, m.position, m.sender_id, m.message_type, m.content, m.attachment,"
    " m.attachment_name, m.attachment_size, m.reply_to, m.client_message_id, m.created_at, m.modified_at,"
    f" m.is_edited, m.edited_at, m.is_deleted, m.deleted_at, {USER_COLUMNS}"
)


def room_key(room_id: str | UUID) -> str | None:
    """A room id as the tables hold it, or None when it is no UUID (so no room)."""
    try:
        return str(UUID(str(room_id)))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RoomFilters:
    room_type: str | None = None
    search: str = ""
    include_archived: bool = False


class ChatQueries:
    def __init__(self, read: Reader, media_url: MediaUrl):
        self._read = read
        self._media_url = media_url

    # -- membership -------------------------------------------------------------------------------------------------

    async def membership(self, room_id: str, user_id: int) -> str:
        """ "member", "absent" (no such room) or "outsider" (a room the user is not, or no longer, in)."""
        key = room_key(room_id)
        if key is None:
            return "absent"
        row = await self._read.fetchone(
            "SELECT r.room_id, p.left_at, p.participant_id FROM chat_rooms_view r LEFT JOIN chat_participants_view p"
            " ON p.room_id = r.room_id AND p.user_id = %s WHERE r.room_id = %s",
            (user_id, key),
        )
        if row is None:
            return "absent"
        return "member" if row["participant_id"] is not None and row["left_at"] is None else "outsider"

    async def _me(self, actor: Actor, room_id: str | UUID) -> dict[str, Any]:
        key = room_key(room_id)
        row = None
        if key is not None:
            row = await self._read.fetchone(
                f"SELECT {PARTICIPANT_SELECT} FROM chat_participants_view p LEFT JOIN users_view u ON u.id = p.user_id"
                " WHERE p.room_id = %s AND p.user_id = %s AND p.left_at IS NULL",
                (key, actor.id),
            )
        if row is None:
            raise NotFound(f"room {str(room_id)[:40]}")
        return row

    async def unread_count(self, actor: Actor, room_id: str | UUID) -> int:
        return int((await self._me(actor, room_id))["unread_count"])

    # -- rooms ------------------------------------------------------------------------------------------------------

    async def rooms(self, actor: Actor, filters: RoomFilters, request: PageRequest) -> Slice[RoomSummary]:
        where, params = ["me.user_id = %s", "me.left_at IS NULL"], [actor.id]
        if filters.room_type:
            where.append("r.room_type = %s")
            params.append(filters.room_type)
        if not filters.include_archived:
            where.append("r.is_active")
        if filters.search:
            pattern = like(filters.search)
            where.append(
                "(lower(r.name) LIKE %s ESCAPE '\\' OR (r.room_type = 'direct' AND EXISTS (SELECT 1 FROM"
                " chat_participants_view o JOIN users_view ou ON ou.id = o.user_id WHERE o.room_id = r.room_id"
                " AND o.user_id <> me.user_id AND (lower(ou.username) LIKE %s ESCAPE '\\'"
                " OR lower(ou.first_name || ' ' || ou.last_name) LIKE %s ESCAPE '\\'))))"
            )
            params += [pattern, pattern, pattern]
        found = await page_of(
            self._read,
            request,
            select=(
                "r.room_id, r.name, r.room_type, r.task_id, r.property_id, r.is_active, r.modified_at,"
                f" r.last_message_at, lm.content AS last_content, ({ACTIVE_COUNT}) AS participant_count,"
                f" ({UNREAD.format(p='me')}) AS unread_count"
            ),
            from_where=(
                "FROM chat_rooms_view r JOIN chat_participants_view me ON me.room_id = r.room_id"
                " LEFT JOIN chat_messages_view lm ON lm.message_id = r.last_message_id"
                f" WHERE {' AND '.join(where)}"
            ),
            params=params,
            order_by="r.modified_at DESC, r.room_id",
            shape=dict,
        )
        names = await self._direct_names(actor, [r["room_id"] for r in found.results if r["room_type"] == "direct"])
        return Slice(
            found.count,
            [
                RoomSummary(
                    id=r["room_id"],
                    name=r["name"],
                    display_name=names.get(r["room_id"], r["name"]) if r["room_type"] == "direct" else r["name"],
                    room_type=r["room_type"],
                    task=r["task_id"],
                    property=r["property_id"],
                    is_active=bool(r["is_active"]),
                    unread_count=int(r["unread_count"]),
                    last_message_preview=preview(r["last_content"]),
                    last_message_time=r["last_message_at"],
                    participant_count=int(r["participant_count"]),
                    modified_at=r["modified_at"],
                )
                for r in found.results
            ],
            request,
        )

    async def _direct_names(self, actor: Actor, room_ids: list[str]) -> dict[str, str]:
        """A direct room is shown by the other participant's name."""
        if not room_ids:
            return {}
        rows = await self._read.fetchall(
            f"SELECT p.room_id, {USER_COLUMNS} FROM chat_participants_view p JOIN users_view u ON u.id = p.user_id"
            f" WHERE p.room_id IN ({', '.join(['%s'] * len(room_ids))}) AND p.user_id <> %s",
            (*room_ids, actor.id),
        )
        return {r["room_id"]: full_name(r) for r in rows}

    async def room(self, actor: Actor, room_id: str | UUID) -> RoomOut:
        me = await self._me(actor, room_id)
        key = me["room_id"]
        room, participants, last = await self._read.fetch_many(
            [
                (
                    "SELECT r.room_id, r.name, r.room_type, r.task_id, r.property_id, r.created_by, r.created_at,"
                    f" r.modified_at, r.is_active, r.archived_at, r.last_message_id, {USER_COLUMNS}"
                    " FROM chat_rooms_view r LEFT JOIN users_view u ON u.id = r.created_by WHERE r.room_id = %s",
                    (key,),
                ),
                (
                    f"SELECT {PARTICIPANT_SELECT} FROM chat_participants_view p"
                    " LEFT JOIN users_view u ON u.id = p.user_id WHERE p.room_id = %s AND p.left_at IS NULL"
                    " ORDER BY p.participant_id",
                    (key,),
                ),
                (
                    f"SELECT {MESSAGE_SELECT} FROM chat_rooms_view r JOIN chat_messages_view m"
                    " ON m.message_id = r.last_message_id LEFT JOIN users_view u ON u.id = m.sender_id"
                    " WHERE r.room_id = %s",
                    (key,),
                ),
            ]
        )
        r = room[0]
        people = [participant_out(p) for p in participants]
        others = [p.user.full_name for p in people if p.user.id != actor.id]
        display = (others[0] if others else r["name"]) if r["room_type"] == "direct" else r["name"]
        return RoomOut(
            id=key,
            name=r["name"],
            room_type=r["room_type"],
            task=r["task_id"],
            property=r["property_id"],
            created_at=r["created_at"],
            modified_at=r["modified_at"],
            created_by=brief(r, "created_by") if r["username"] is not None else None,
            is_active=bool(r["is_active"]),
            archived_at=r["archived_at"],
            participants=people,
            participant_count=len(people),
            last_message=(
                LastMessage(
                    id=last[0]["message_id"],
                    sender=brief(last[0], "sender_id"),
                    content=last[0]["content"],
                    message_type=last[0]["message_type"],
                    created_at=last[0]["created_at"],
                    is_edited=bool(last[0]["is_edited"]),
                )
                if last
                else None
            ),
            unread_count=int(me["unread_count"]),
            display_name=display,
        )

    async def stats(self, actor: Actor, room_id: str) -> RoomStats:
        me = await self._me(actor, room_id)
        row = await self._read.fetchone(
            f"SELECT r.message_count, r.last_message_at, ({ACTIVE_COUNT}) AS participant_count"
            " FROM chat_rooms_view r WHERE r.room_id = %s",
            (me["room_id"],),
        )
        assert row is not None
        return RoomStats(
            message_count=int(row["message_count"]),
            participant_count=int(row["participant_count"]),
            unread_count=int(me["unread_count"]),
            last_message_at=row["last_message_at"],
        )

    # -- messages ---------------------------------------------------------------------------------------------------

    async def _readers(self, actor: Actor, room_ids: list[str]) -> dict[str, tuple[list[Marker], int]]:
        """Per room: its participants' read markers, and where the asking user joined it."""
        if not room_ids:
            return {}
        rows = await self._read.fetchall(
            "SELECT room_id, user_id, read_up_to, last_read_at, joined_position FROM chat_participants_view"
            f" WHERE room_id IN ({', '.join(['%s'] * len(room_ids))}) AND (read_up_to > 0 OR user_id = %s)",
            (*room_ids, actor.id),
        )
        found: dict[str, tuple[list[Marker], int]] = {room: ([], 0) for room in room_ids}
        for r in rows:
            readers, joined = found[r["room_id"]]
            if r["user_id"] == actor.id:
                joined = int(r["joined_position"])
            readers.append((r["user_id"], r["read_up_to"], r["last_read_at"]))
            found[r["room_id"]] = (readers, joined)
        return found

    async def _shaped(self, actor: Actor, rows: list[dict[str, Any]]) -> list[MessageOut]:
        readers = await self._readers(actor, sorted({r["room_id"] for r in rows}))
        return [message_out(r, actor.id, *readers[r["room_id"]], self._media_url) for r in rows]

    async def messages(self, actor: Actor, room_id: str, request: PageRequest) -> Slice[MessageOut]:
        me = await self._me(actor, room_id)
        found = await page_of(
            self._read,
            request,
            select=MESSAGE_SELECT,
            from_where="FROM chat_messages_view m LEFT JOIN users_view u ON u.id = m.sender_id WHERE m.room_id = %s",
            params=(me["room_id"],),
            order_by=order_clause(request.ordering, MESSAGE_ORDERING, "-created_at") + ", m.position",
            shape=dict,
        )
        return Slice(found.count, await self._shaped(actor, found.results), request)

    async def message(self, actor: Actor, message_id: str | UUID) -> MessageOut:
        key = room_key(message_id)
        row = None
        if key is not None:
            row = await self._read.fetchone(
                f"SELECT {MESSAGE_SELECT} FROM chat_messages_view m LEFT JOIN users_view u ON u.id = m.sender_id"
                " JOIN chat_participants_view me ON me.room_id = m.room_id AND me.user_id = %s"
                " AND me.left_at IS NULL WHERE m.message_id = %s",
                (actor.id, key),
            )
        if row is None:
            raise NotFound(f"message {str(message_id)[:40]}")
        return (await self._shaped(actor, [row]))[0]

    async def search(self, actor: Actor, q: str, room_id: str | None, request: PageRequest) -> Slice[MessageOut]:
        if len(q.strip()) < SEARCH_MIN:
            raise ValidationFailed.one("q", f"Enter at least {SEARCH_MIN} characters.")
        where, params = ["lower(m.content) LIKE %s ESCAPE '\\'", "NOT m.is_deleted"], [actor.id, like(q.strip())]
        if room_id is not None:
            where.append("m.room_id = %s")
            params.append((await self._me(actor, room_id))["room_id"])
        found = await page_of(
            self._read,
            request,
            select=MESSAGE_SELECT,
            from_where=(
                "FROM chat_messages_view m JOIN chat_participants_view me ON me.room_id = m.room_id"
                " AND me.user_id = %s AND me.left_at IS NULL LEFT JOIN users_view u ON u.id = m.sender_id"
                f" WHERE {' AND '.join(where)}"
            ),
            params=params,
            order_by="m.created_at DESC, m.position DESC",
            shape=dict,
        )
        return Slice(found.count, await self._shaped(actor, found.results), request)

    # -- participants -----------------------------------------------------------------------------------------------

    async def participants(self, actor: Actor, room_id: str, request: PageRequest) -> Slice[ParticipantOut]:
        me = await self._me(actor, room_id)
        return await page_of(
            self._read,
            request,
            select=PARTICIPANT_SELECT,
            from_where=(
                "FROM chat_participants_view p LEFT JOIN users_view u ON u.id = p.user_id"
                " WHERE p.room_id = %s AND p.left_at IS NULL"
            ),
            params=(me["room_id"],),
            order_by="p.participant_id",
            shape=participant_out,
        )

    async def participant(self, actor: Actor, participant_id: int) -> ParticipantOut:
        """A participant (active or not) of a room the actor is in."""
        row = await self._read.fetchone(
            f"SELECT {PARTICIPANT_SELECT} FROM chat_participants_view p LEFT JOIN users_view u ON u.id = p.user_id"
            " JOIN chat_participants_view me ON me.room_id = p.room_id AND me.user_id = %s AND me.left_at IS NULL"
            " WHERE p.participant_id = %s",
            (actor.id, participant_id),
        )
        if row is None:
            raise NotFound(f"participant {participant_id}")
        return participant_out(row)

    # -- for commands, sockets and media ----------------------------------------------------------------------------

    async def latest_message(self, room_id: UUID) -> tuple[int, UUID] | None:
        row = await self._read.fetchone(
            "SELECT position, message_id FROM chat_messages_view WHERE room_id = %s ORDER BY position DESC LIMIT 1",
            (str(room_id),),
        )
        return None if row is None else (int(row["position"]), UUID(row["message_id"]))

    async def message_position(self, message_id: UUID) -> tuple[UUID, int] | None:
        row = await self._read.fetchone(
            "SELECT room_id, position FROM chat_messages_view WHERE message_id = %s", (str(message_id),)
        )
        return None if row is None else (UUID(row["room_id"]), int(row["position"]))

    async def since(self, room_id: str, cursor: int, limit: int) -> list[dict[str, Any]]:
        """The room's log after `cursor`, oldest first, as rows for `shapes.push_of`."""
        return await self._read.fetchall(
            log_sql(LIVE, "l.room_id = %s AND l.position > %s", limit), (room_key(room_id), cursor)
        )

    async def message_log(self, message_id: UUID) -> dict[str, Any] | None:
        """The log row of a message's sending, for `shapes.push_of` (a retried send answers with it again)."""
        rows = await self._read.fetchall(
            log_sql(LIVE, "l.message_id = %s AND l.kind = %s", 1), (str(message_id), CHAT_MESSAGE)
        )
        return rows[0] if rows else None

    async def attachment_name(self, name: str) -> str | None:
        """The name a stored attachment was sent with, while it belongs to a message (a deleted message's file is
        no longer served: None)."""
        row = await self._read.fetchone("SELECT attachment_name FROM chat_messages_view WHERE attachment = %s", (name,))
        return None if row is None else str(row["attachment_name"])
