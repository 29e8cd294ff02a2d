"""The chat aggregates' rules, without storage."""

from __future__ import annotations

import uuid

import pytest

from cosmo.domain.chat import (
    DELETED_CONTENT,
    ChatMessage,
    ChatRoom,
    ReadMarker,
    client_message_id,
    direct_room_id,
    room_problems,
)
from cosmo.domain.errors import NotFound, PermissionDenied, ValidationFailed


def _room(kind: str = "group", members: tuple[int, ...] = (1, 2, 3)) -> ChatRoom:
    return ChatRoom(
        room_id=uuid.uuid4(),
        room_type=kind,
        name="Team",
        task_id=None,
        property_id=None,
        participants=[{"user_id": u, "participant_id": 10 + u, "is_admin": u == members[0]} for u in members],
        actor_id=members[0],
    )


def _message(room: ChatRoom, sender: int = 2) -> ChatMessage:
    return ChatMessage(
        message_id=uuid.uuid4(),
        room_id=room.id,
        sender_id=sender,
        message_type="text",
        content="hi",
        reply_to=None,
        attachment=None,
        client_message_id=None,
    )


def test_direct_rooms_and_client_ids_are_derived_from_their_keys() -> None:
    assert direct_room_id(3, 5) == direct_room_id(5, 3) != direct_room_id(3, 6)
    client = uuid.uuid4()
    room = uuid.uuid4()
    assert (
        client_message_id(room, 1, client) == client_message_id(room, 1, client) != client_message_id(room, 2, client)
    )


def test_room_shapes() -> None:
    assert "name" in room_problems({"room_type": "group", "name": " ", "participant_ids": []})
    assert "participant_ids" in room_problems({"room_type": "direct", "name": "", "participant_ids": [1, 2]})
    assert "task" in room_problems({"room_type": "task", "name": "", "participant_ids": [], "task_id": None})
    assert "room_type" in room_problems({"room_type": "secret", "name": "", "participant_ids": []})
    assert room_problems({"room_type": "group", "name": "Crew", "participant_ids": [2]}) == {}


def test_the_last_admin_names_a_successor() -> None:
    room = _room()
    with pytest.raises(ValidationFailed) as refused:
        room.leave(1, None)
    assert "new_admin" in refused.value.details
    with pytest.raises(ValidationFailed):
        room.leave(1, 99)  # not a participant
    room.leave(1, 3)
    assert not room.is_member(1) and room.is_admin(3)
    room.leave(2, None)  # not an admin: free to go
    room.leave(3, None)  # the last one of all: nobody to hand over to
    assert room.active_ids() == []


def test_admins_add_and_remove() -> None:
    room = _room()
    with pytest.raises(PermissionDenied):
        room.remove(3, 2)
    room.remove(3, 1)
    with pytest.raises(NotFound):
        room.remove(3, 1)
    # Back again, with the participant id they had.
    room.add(3, 99, False, 1)
    assert room.participant_id(3) == 13 and room.is_member(3)
    with pytest.raises(ValidationFailed):
        room.add(3, 100, False, 1)
    direct = _room("direct", (1, 2))
    with pytest.raises(ValidationFailed):
        direct.add(4, 100, False, 1)


def test_mute_is_ones_own_and_archive_closes_the_room() -> None:
    room = _room()
    with pytest.raises(PermissionDenied):
        room.mute(2, 1, True, None)
    room.mute(2, 2, True, None)
    assert room.participants[2]["is_muted"]
    with pytest.raises(PermissionDenied):
        room.archive(2)
    room.archive(1)
    with pytest.raises(ValidationFailed):
        room.require_open()


def test_messages_are_edited_by_their_sender_and_deleted_softly() -> None:
    room = _room()
    message = _message(room)
    with pytest.raises(PermissionDenied):
        message.edit("mine now", 3)
    with pytest.raises(ValidationFailed):
        message.edit("\x00", 2)
    message.edit("better", 2)
    assert message.content == "better"
    with pytest.raises(PermissionDenied):
        message.delete(3, room_admin=False)
    message.delete(1, room_admin=True)
    assert (message.is_deleted, message.content, message.attachment) == (True, DELETED_CONTENT, None)
    with pytest.raises(ValidationFailed):
        message.edit("back", 2)


def test_a_read_marker_only_moves_forward() -> None:
    room = uuid.uuid4()
    marker = ReadMarker(room_id=room, user_id=2, up_to=10, message_id=uuid.uuid4())
    marker.move(5, uuid.uuid4())
    assert marker.up_to == 10
    later = uuid.uuid4()
    marker.move(12, later)
    assert (marker.up_to, marker.message_id) == (12, later)
    assert len(marker.collect_events()) == 2


def test_attachment_names_lose_paths_and_disguises() -> None:
    from cosmo.domain.chat import attachment_name

    assert attachment_name("../../etc/passwd") == "passwd"
    assert attachment_name("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert attachment_name("invoice\u202etxt.exe") == "invoicetxt.exe"
    assert attachment_name("a\x00b") == "a\ufffdb"
    assert attachment_name("") == "attachment"
    assert len(attachment_name("x" * 1000)) == 255


def test_attachments_are_refused_above_the_limit_whatever_they_are() -> None:
    from cosmo.domain.chat import ATTACHMENT_MAX_BYTES
    from cosmo.media.attachments import classify

    with pytest.raises(ValidationFailed) as refused:
        classify(b"a" * (ATTACHMENT_MAX_BYTES + 1))
    assert "attachment" in refused.value.details
    assert classify(b"%PDF-1.4 tiny").extension == "pdf"
