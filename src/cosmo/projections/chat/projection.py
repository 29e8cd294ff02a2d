"""The chat projection: rooms, participants (with their read markers), messages, and each room's log of pushable
events (what a socket resuming with `since` replays, and what live pushes are made of)."""

from __future__ import annotations

from typing import Any

from cosmo.domain.chat import DELETED_CONTENT, ChatMessage, ChatRoom, ReadMarker
from cosmo.projections.base import Index, Projection, Read, Table, handles, update_row
from cosmo.storage.db import Cursor

ROOM_COLUMNS = """
    room_id text NOT NULL,
    name text NOT NULL,
    room_type text NOT NULL,
    task_id bigint,
    property_id bigint,
    created_by bigint NOT NULL,
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    is_active boolean NOT NULL,
    archived_at timestamptz,
    message_count bigint NOT NULL,
    last_message_id text,
    last_message_at timestamptz
"""

PARTICIPANT_COLUMNS = """
    participant_id bigint NOT NULL,
    room_id text NOT NULL,
    user_id bigint NOT NULL,
    is_admin boolean NOT NULL,
    joined_at timestamptz NOT NULL,
    joined_position bigint NOT NULL,
    left_at timestamptz,
    is_muted boolean NOT NULL,
    muted_until timestamptz,
    read_up_to bigint NOT NULL,
    last_read_at timestamptz
"""

MESSAGE_COLUMNS = """
    message_id text NOT NULL,
    room_id text NOT NULL,
    position bigint NOT NULL,
    sender_id bigint NOT NULL,
    message_type text NOT NULL,
    content text NOT NULL,
    attachment text,
    attachment_name text NOT NULL,
    attachment_size bigint,
    reply_to text,
    client_message_id text,
    created_at timestamptz NOT NULL,
    modified_at timestamptz NOT NULL,
    is_edited boolean NOT NULL,
    edited_at timestamptz,
    is_deleted boolean NOT NULL,
    deleted_at timestamptz
"""

# One row per pushable event of a room, at the event's log position (its `cursor`).
LOG_COLUMNS = """
    room_id text NOT NULL,
    position bigint NOT NULL,
    kind text NOT NULL,
    message_id text,
    user_id bigint,
    participant_id bigint,
    detail text NOT NULL,
    at timestamptz NOT NULL
"""

CHAT_MESSAGE, UPDATED, DELETED = "chat_message", "message_updated", "message_deleted"
JOINED, LEFT, READ = "participant_joined", "participant_left", "read_receipt"


class ChatProjection(Projection):
    name = "chat"
    version = 2
    tables = (
        Table("chat_rooms_view", ROOM_COLUMNS, "room_id"),
        Table(
            "chat_participants_view",
            PARTICIPANT_COLUMNS,
            "participant_id",
            (Index("room_user", "room_id, user_id", unique=True), Index("user", "user_id, left_at")),
        ),
        Table(
            "chat_messages_view",
            MESSAGE_COLUMNS,
            "message_id",
            (
                Index("room_position", "room_id, position"),
                Index("room_created", "room_id, created_at, position"),
                Index("attachment", "attachment", where="attachment IS NOT NULL"),
            ),
        ),
        Table("chat_log_view", LOG_COLUMNS, "room_id, position", (Index("position", "position"),)),
    )

    def _log(
        self,
        cur: Cursor,
        t: dict[str, str],
        e: Any,
        room_id: Any,
        kind: str,
        message_id: Any = None,
        user_id: int | None = None,
        participant_id: int | None = None,
        detail: str = "",
    ) -> None:
        cur.execute(
            f"INSERT INTO {t['chat_log_view']} (room_id, position, kind, message_id, user_id, participant_id,"
            " detail, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                str(room_id),
                self.position,
                kind,
                None if message_id is None else str(message_id),
                user_id,
                participant_id,
                detail,
                e.timestamp,
            ),
        )

    def _join(self, cur: Cursor, t: dict[str, str], e: Any, user_id: int, participant_id: int, admin: bool) -> None:
        """A participant joins, or joins again (same participant id): not muted, nothing read yet."""
        cur.execute(
            f"INSERT INTO {t['chat_participants_view']} (participant_id, room_id, user_id, is_admin, joined_at,"
            " joined_position, left_at, is_muted, muted_until, read_up_to, last_read_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, NULL, %s, NULL)"
            " ON CONFLICT (participant_id) DO UPDATE SET is_admin = excluded.is_admin, joined_at = excluded.joined_at,"
            " joined_position = excluded.joined_position, left_at = NULL, is_muted = excluded.is_muted,"
            " muted_until = NULL",
            (participant_id, str(e.originator_id), user_id, admin, e.timestamp, self.position, False, 0),
        )

    def _touch(self, cur: Cursor, t: dict[str, str], e: Any) -> None:
        update_row(cur, t["chat_rooms_view"], {"modified_at": e.timestamp}, "room_id", str(e.originator_id))

    @handles(ChatRoom.Created)
    def room_created(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"INSERT INTO {t['chat_rooms_view']} (room_id, name, room_type, task_id, property_id, created_by,"
            " created_at, modified_at, is_active, archived_at, message_count, last_message_id, last_message_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, NULL, NULL)",
            (
                str(e.originator_id),
                e.name,
                e.room_type,
                e.task_id,
                e.property_id,
                e.actor_id,
                e.timestamp,
                e.timestamp,
                True,
                0,
            ),
        )
        for p in e.participants:
            self._join(cur, t, e, p["user_id"], p["participant_id"], p["is_admin"])

    @handles(ChatRoom.ParticipantAdded)
    def participant_added(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._join(cur, t, e, e.user_id, e.participant_id, e.is_admin)
        self._touch(cur, t, e)
        self._log(cur, t, e, e.originator_id, JOINED, user_id=e.user_id, participant_id=e.participant_id)

    def _gone(self, cur: Cursor, t: dict[str, str], e: Any, user_id: int, reason: str) -> None:
        room = str(e.originator_id)
        cur.execute(
            f"UPDATE {t['chat_participants_view']} SET left_at = %s WHERE room_id = %s AND user_id = %s",
            (e.timestamp, room, user_id),
        )
        self._touch(cur, t, e)
        cur.execute(
            f"INSERT INTO {t['chat_log_view']} (room_id, position, kind, message_id, user_id, participant_id,"
            f" detail, at) SELECT %s, %s, %s, NULL, %s, participant_id, %s, %s FROM {t['chat_participants_view']}"
            " WHERE room_id = %s AND user_id = %s",
            (room, self.position, LEFT, user_id, reason, e.timestamp, room, user_id),
        )

    @handles(ChatRoom.ParticipantRemoved)
    def participant_removed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        self._gone(cur, t, e, e.user_id, "removed")

    @handles(ChatRoom.ParticipantLeft)
    def participant_left(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        if e.new_admin is not None:
            cur.execute(
                f"UPDATE {t['chat_participants_view']} SET is_admin = %s WHERE room_id = %s AND user_id = %s",
                (True, str(e.originator_id), e.new_admin),
            )
        self._gone(cur, t, e, e.user_id, "left")

    @handles(ChatRoom.Archived)
    def archived(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        update_row(
            cur,
            t["chat_rooms_view"],
            {"is_active": False, "archived_at": e.timestamp, "modified_at": e.timestamp},
            "room_id",
            str(e.originator_id),
        )

    @handles(ChatRoom.MuteChanged)
    def mute_changed(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['chat_participants_view']} SET is_muted = %s, muted_until = %s"
            " WHERE room_id = %s AND user_id = %s",
            (e.muted, e.muted_until, str(e.originator_id), e.user_id),
        )

    def _log_message(self, cur: Cursor, t: dict[str, str], e: Any, kind: str, user_id: int) -> None:
        """Log an event of a message the room shows (one refused by the log's order has no row: nothing to log)."""
        cur.execute(
            f"INSERT INTO {t['chat_log_view']} (room_id, position, kind, message_id, user_id, participant_id, detail,"
            f" at) SELECT room_id, %s, %s, message_id, %s, NULL, '', %s FROM {t['chat_messages_view']}"
            " WHERE message_id = %s",
            (self.position, kind, user_id, e.timestamp, str(e.originator_id)),
        )

    @handles(ChatMessage.Sent)
    def message_sent(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        """A message counts only if, at its place in the log, its sender was an active participant of an open room:
        a send decided just before its sender was removed (or the room archived) but saved just after is refused
        here, in log order, the same way on every replay. System messages are the server's and always count."""
        attachment = e.attachment or {}
        message, room = str(e.originator_id), str(e.room_id)
        cur.execute(
            f"INSERT INTO {t['chat_messages_view']} (message_id, room_id, position, sender_id, message_type, content,"
            " attachment, attachment_name, attachment_size, reply_to, client_message_id, created_at, modified_at,"
            " is_edited, edited_at, is_deleted, deleted_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, NULL, %s, NULL)",
            (
                message,
                room,
                self.position,
                e.sender_id,
                e.message_type,
                e.content,
                attachment.get("file"),
                attachment.get("name", ""),
                attachment.get("size"),
                None if e.reply_to is None else str(e.reply_to),
                None if e.client_message_id is None else str(e.client_message_id),
                e.timestamp,
                e.timestamp,
                False,
                False,
            ),
        )
        if e.message_type != "system":
            cur.execute(
                f"DELETE FROM {t['chat_messages_view']} WHERE message_id = %s AND NOT EXISTS (SELECT 1 FROM"
                f" {t['chat_participants_view']} p JOIN {t['chat_rooms_view']} r ON r.room_id = p.room_id"
                " WHERE p.room_id = %s AND p.user_id = %s AND p.left_at IS NULL AND r.is_active)",
                (message, room, e.sender_id),
            )
        cur.execute(
            f"UPDATE {t['chat_rooms_view']} SET message_count = message_count + 1, last_message_id = %s,"
            f" last_message_at = %s, modified_at = %s WHERE room_id = %s AND EXISTS (SELECT 1 FROM"
            f" {t['chat_messages_view']} WHERE message_id = %s)",
            (message, e.timestamp, e.timestamp, room, message),
        )
        self._log_message(cur, t, e, CHAT_MESSAGE, e.sender_id)

    @handles(ChatMessage.Edited)
    def message_edited(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        update_row(
            cur,
            t["chat_messages_view"],
            {"content": e.content, "is_edited": True, "edited_at": e.timestamp, "modified_at": e.timestamp},
            "message_id",
            str(e.originator_id),
        )
        self._log_message(cur, t, e, UPDATED, e.actor_id)

    @handles(ChatMessage.Deleted)
    def message_deleted(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        message = str(e.originator_id)
        cur.execute(
            f"UPDATE {t['chat_rooms_view']} SET message_count = message_count - 1 WHERE room_id = %s AND EXISTS"
            f" (SELECT 1 FROM {t['chat_messages_view']} WHERE message_id = %s)",
            (str(e.room_id), message),
        )
        update_row(
            cur,
            t["chat_messages_view"],
            {
                "content": DELETED_CONTENT,
                "attachment": None,
                "is_deleted": True,
                "deleted_at": e.timestamp,
                "modified_at": e.timestamp,
            },
            "message_id",
            message,
        )
        self._log_message(cur, t, e, DELETED, e.actor_id)

    @handles(ReadMarker.Created, ReadMarker.Moved)
    def marker_moved(self, cur: Cursor, e: Any, t: dict[str, str]) -> None:
        cur.execute(
            f"UPDATE {t['chat_participants_view']} SET read_up_to = %s, last_read_at = %s"
            " WHERE room_id = %s AND user_id = %s AND read_up_to < %s",
            (e.up_to, e.timestamp, str(e.room_id), e.user_id, e.up_to),
        )
        self._log(cur, t, e, e.room_id, READ, message_id=e.message_id, user_id=e.user_id)

    def announce(self, read: Read, t: dict[str, str], first: int, last: int) -> None:
        """The batch's pushable events, one read for the whole batch; shaped by the pushes module."""
        for row in read(log_sql(t, "l.position >= %s AND l.position <= %s"), (first, last)):
            self.emit("chat", row)


# What a push needs of a log row: the message as it stands now, its sender's (or the participant's) name.
LOG_SELECT = (
    "l.room_id, l.position, l.kind, l.message_id, l.user_id, l.participant_id, l.detail, l.at,"
    " m.sender_id, m.message_type, m.content, m.reply_to, m.client_message_id, m.created_at, m.is_edited,"
    " m.edited_at, m.is_deleted, m.deleted_at, m.attachment, m.attachment_name, m.attachment_size,"
    " u.username, u.first_name, u.last_name, u.email, p.is_admin"
)


def log_sql(t: dict[str, str], where: str, limit: int = 0) -> str:
    """Log rows (in log order) with what their pushes show; `where` on the log's columns (alias l)."""
    return (
        f"SELECT {LOG_SELECT} FROM {t['chat_log_view']} l"
        f" LEFT JOIN {t['chat_messages_view']} m ON m.message_id = l.message_id"
        " LEFT JOIN users_view u ON u.id = l.user_id"
        f" LEFT JOIN {t['chat_participants_view']} p ON p.participant_id = l.participant_id"
        f" WHERE {where} ORDER BY l.position{f' LIMIT {int(limit)}' if limit else ''}"
    )
