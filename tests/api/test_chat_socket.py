"""The chat socket: every event of the contract both ways, close codes, limits, resuming with `since`, and fan-out
across API processes (both backends; across processes on PostgreSQL + Redis)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect

from cosmo.api import chat_socket
from tests.api.test_chat_api import _participant_id
from tests.conftest import Api, Backend, make_api


@pytest.fixture
def crew(api: Api) -> dict:
    ids = {
        "alice": api.make_user("alice", "manager", "none"),
        "bob": api.make_user("bob", "staff", "cleaning"),
        "carol": api.make_user("carol", "staff", "maintenance"),
    }
    return {"ids": ids, "h": {name: api.auth(name) for name in ids}}


def _group(api: Api, crew: dict, *members: str) -> str:
    body = {"room_type": "group", "name": "Team", "participant_ids": [crew["ids"][m] for m in members]}
    r = api.post("/api/chat/rooms/", json=body, headers=crew["h"]["alice"])
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _socket(api: Api, user: str, room: str, query: str = "") -> Any:
    return api.websocket_connect(f"/ws/chat/{room}/?token={api.login(user)['access']}{query}")


def _next(ws: Any, kind: str, timeout: float = 5, content: str | None = None) -> dict:
    """The next push of `kind` (and, for messages, with this `content`), skipping others."""
    deadline = time.monotonic() + timeout
    while True:
        message = ws.receive_json(timeout=max(deadline - time.monotonic(), 0.01))
        if message["type"] == kind and (content is None or message["message"]["content"] == content):
            return message


def _closed_with(ws: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        for _ in range(50):
            ws.receive_json(timeout=5)
    return closed.value.code


def test_every_event_flows_both_ways(api: Api, crew) -> None:
    h, ids = crew["h"], crew["ids"]
    room = _group(api, crew, "bob")
    with _socket(api, "alice", room) as a, _socket(api, "bob", room) as b:
        hello = b.receive_json(timeout=5)
        assert hello == {
            "type": "connection_established",
            "room_id": room,
            "unread_count": 0,
            "user_id": ids["bob"],
            "username": "bob",
        }
        a.receive_json(timeout=5)
        # A socket's message reaches both sockets, the sender's own included.
        a.send_json({"type": "chat_message", "message": "Hello from Flutter!"})
        got_b, got_a = _next(b, "chat_message"), _next(a, "chat_message")
        assert got_a == got_b and isinstance(got_b["cursor"], int)
        message = got_b["message"]
        assert message["content"] == "Hello from Flutter!" and message["room_id"] == room
        assert message["sender"] == {"id": ids["alice"], "username": "alice", "full_name": "alice"}
        assert {"id", "message_type", "reply_to_id", "created_at", "is_edited", "edited_at"} <= set(message)
        # A REST send is pushed too, and a reply names what it replies to.
        r = api.post(
            "/api/chat/messages/",
            json={"room": room, "content": "via REST", "reply_to": message["id"]},
            headers=h["bob"],
        )
        assert r.status_code == 201
        pushed = _next(a, "chat_message")["message"]
        assert pushed["content"] == "via REST" and pushed["reply_to_id"] == message["id"]
        _next(b, "chat_message")
        # Typing goes to the others, never back to the typist.
        b.send_json({"type": "typing", "is_typing": True})
        assert _next(a, "typing") == {
            "type": "typing",
            "room_id": room,
            "user_id": ids["bob"],
            "username": "bob",
            "is_typing": True,
        }
        b.send_json({"type": "typing", "is_typing": False})
        assert _next(a, "typing")["is_typing"] is False
        # Read receipts both ways: bob reads alice's message, alice hears it.
        b.send_json({"type": "read_receipt", "message_id": message["id"]})
        receipt = _next(a, "read_receipt")
        assert (receipt["message_id"], receipt["user_id"]) == (message["id"], ids["bob"]) and receipt["read_at"]
        a.send_json({"type": "mark_room_read"})
        assert _next(a, "room_marked_read") == {"type": "room_marked_read", "room_id": room}
        # Every socket of the room hears every receipt (a reader's other devices clear their counts too).
        assert _next(b, "read_receipt")["user_id"] == ids["bob"]
        assert _next(b, "read_receipt")["user_id"] == ids["alice"]
        # Edits and deletions made through REST show live.
        api.patch(f"/api/chat/messages/{message['id']}/", json={"content": "Edited"}, headers=h["alice"])
        updated = _next(b, "message_updated")["message"]
        assert (updated["content"], updated["is_edited"]) == ("Edited", True)
        api.delete(f"/api/chat/messages/{message['id']}/", headers=h["alice"])
        deleted = _next(b, "message_deleted")
        assert deleted["message_id"] == message["id"] and deleted["deleted_at"]
        # Membership changes: the join and the leaving, and the system message each writes.
        api.post("/api/chat/participants/", json={"room": room, "user": ids["carol"]}, headers=h["alice"])
        joined = _next(b, "participant_joined")
        assert joined["user"]["username"] == "carol" and joined["participant_id"]
        assert _next(b, "chat_message")["message"]["message_type"] == "system"
        with _socket(api, "carol", room) as c:
            assert c.receive_json(timeout=5)["type"] == "connection_established"
            api.post(f"/api/chat/rooms/{room}/leave/", headers=h["carol"])
            left = _next(b, "participant_left")
            assert (left["user_id"], left["reason"]) == (ids["carol"], "left")
            # Carol's own socket hears she left, then is closed: she is no longer a participant.
            assert _next(c, "participant_left")["user_id"] == ids["carol"]
            assert _closed_with(c) == 4003
    unread = api.get(f"/api/chat/rooms/{room}/", headers=h["bob"]).json()
    assert unread["unread_count"] == 2  # the system messages: carol added, carol left


def test_close_codes(api: Api, crew) -> None:
    h, ids = crew["h"], crew["ids"]
    room = _group(api, crew, "bob")
    for token in ("", "garbage", api.login("bob")["refresh"]):
        with api.websocket_connect(f"/ws/chat/{room}/?token={token}") as ws:
            assert _closed_with(ws) == 4001
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-room"):
        with _socket(api, "bob", missing) as ws:
            assert _closed_with(ws) == 4004
    with _socket(api, "carol", room) as ws:
        assert _closed_with(ws) == 4003
    # Removed while connected: told, then closed with 4003.
    with _socket(api, "bob", room) as ws:
        ws.receive_json(timeout=5)
        participant = _participant_id(api, h["alice"], room, ids["bob"])
        api.delete(f"/api/chat/participants/{participant}/", headers=h["alice"])
        assert _next(ws, "participant_left")["reason"] == "removed"
        assert _closed_with(ws) == 4003
    with _socket(api, "bob", room) as ws:
        assert _closed_with(ws) == 4003
    # A deactivated user's socket is closed with 4001.
    with _socket(api, "alice", room) as ws:
        ws.receive_json(timeout=5)
        api.make_user("root", "superuser", "none")
        r = api.patch(f"/api/users/{ids['alice']}/", json={"is_active": False}, headers=api.auth("root"))
        assert r.status_code == 200, r.text
        assert _closed_with(ws) == 4001


def test_bad_frames_get_errors_and_the_socket_stays(api: Api, crew) -> None:
    room = _group(api, crew, "bob")
    with _socket(api, "bob", room) as ws:
        ws.receive_json(timeout=5)
        ws.send_text("{not json")
        assert "Invalid JSON" in _next(ws, "error")["message"]
        ws.send_json({"type": "dance"})
        assert "Unknown message type" in _next(ws, "error")["message"]
        ws.send_json({"type": "chat_message", "message": ""})
        assert _next(ws, "error")["details"]["message"]
        ws.send_json({"type": "chat_message", "message": "x" * (70 * 1024)})
        assert "too large" in _next(ws, "error")["message"]
        ws.send_json({"type": "read_receipt", "message_id": "nope"})
        assert _next(ws, "error")["type"] == "error"
        time.sleep(1.1)  # let the rate's bucket fill again
        ws.send_json({"type": "chat_message", "message": "still open"})
        assert _next(ws, "chat_message")["message"]["content"] == "still open"
    stored = api.get(f"/api/chat/messages/?room={room}", headers=crew["h"]["bob"]).json()
    assert [m["content"] for m in stored["results"]] == ["still open"]


def test_a_flooding_socket_is_slowed_and_its_extra_messages_dropped(api: Api, crew) -> None:
    room = _group(api, crew, "bob")
    with _socket(api, "bob", room) as ws:
        ws.receive_json(timeout=5)
        for n in range(25):
            ws.send_text(json.dumps({"type": "chat_message", "message": f"m{n}"}))
        errors = sent = 0
        while errors + sent < 25:
            message = ws.receive_json(timeout=10)
            errors += message["type"] == "error"
            sent += message["type"] == "chat_message"
        assert errors >= 10 and sent <= 15
    count = api.get(f"/api/chat/messages/?room={room}", headers=crew["h"]["bob"]).json()["count"]
    assert count == sent


def test_typing_expires_by_itself(api: Api, crew, monkeypatch) -> None:
    monkeypatch.setattr(chat_socket, "TYPING_EXPIRES", 0.3)
    room = _group(api, crew, "bob")
    with _socket(api, "alice", room) as a, _socket(api, "bob", room) as b:
        a.receive_json(timeout=5)
        b.receive_json(timeout=5)
        b.send_json({"type": "typing", "is_typing": True})
        assert _next(a, "typing")["is_typing"] is True
        assert _next(a, "typing")["is_typing"] is False


def test_a_dropped_socket_resumes_with_since(api: Api, crew) -> None:
    h = crew["h"]
    room = _group(api, crew, "bob")

    def say(text: str) -> None:
        assert (
            api.post("/api/chat/messages/", json={"room": room, "content": text}, headers=h["alice"]).status_code == 201
        )

    with _socket(api, "bob", room) as ws:
        ws.receive_json(timeout=5)
        say("one")
        cursor = _next(ws, "chat_message")["cursor"]
    say("two")
    say("three")
    newest = api.get(f"/api/chat/messages/?room={room}", headers=h["bob"]).json()["results"][0]["id"]
    api.patch(f"/api/chat/messages/{newest}/", json={"content": "three!"}, headers=h["alice"])
    with _socket(api, "bob", room, f"&since={cursor}") as ws:
        assert ws.receive_json(timeout=5)["type"] == "connection_established"
        replayed = [ws.receive_json(timeout=5) for _ in range(3)]
        assert [(m["type"], m["message"]["content"]) for m in replayed] == [
            ("chat_message", "two"),
            ("chat_message", "three!"),
            ("message_updated", "three!"),
        ]
        cursors = [m["cursor"] for m in replayed]
        assert cursors == sorted(cursors) and cursors[0] > cursor
        say("four")
        live = ws.receive_json(timeout=5)
        assert live["message"]["content"] == "four" and live["cursor"] > cursors[-1]
    with _socket(api, "bob", room, "&since=x") as ws:
        ws.receive_json(timeout=5)
        assert "since" in _next(ws, "error")["message"]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # processes share pushes through Redis
def test_sockets_on_two_api_processes_hear_each_other(backend: Backend) -> None:
    first, second = make_api(backend), make_api(backend)
    a, b = next(first), next(second)
    try:
        a.make_user("alice", "manager", "none")
        bob = a.make_user("bob", "staff", "cleaning")
        room = a.post(
            "/api/chat/rooms/", json={"room_type": "direct", "participant_ids": [bob]}, headers=a.auth("alice")
        ).json()["id"]
        with _socket(a, "alice", room) as on_a, _socket(b, "bob", room) as on_b:
            on_a.receive_json(timeout=5)
            on_b.receive_json(timeout=5)
            on_a.send_json({"type": "chat_message", "message": "across"})
            assert _next(on_b, "chat_message")["message"]["content"] == "across"
            on_a.send_json({"type": "typing", "is_typing": True})
            assert _next(on_b, "typing")["user_id"] != bob
            r = b.post("/api/chat/messages/", json={"room": room, "content": "back"}, headers=b.auth("bob"))
            assert r.status_code == 201
            assert _next(on_a, "chat_message", content="back")["message"]["sender"]["id"] == bob
    finally:
        for gen in (first, second):
            next(gen, None)


def test_socket_answers_retries_refuses_odd_cursors_and_survives_deep_json(api: Api, crew) -> None:
    import uuid

    room = _group(api, crew, "bob")
    client_id = str(uuid.uuid4())
    with _socket(api, "bob", room) as ws:
        ws.receive_json(timeout=5)
        ws.send_json({"type": "chat_message", "message": "queued", "client_message_id": client_id})
        first = _next(ws, "chat_message")
        # The retry stores nothing new, and is answered with the stored message (to this socket).
        ws.send_json({"type": "chat_message", "message": "queued", "client_message_id": client_id})
        again = _next(ws, "chat_message")
        assert again["message"]["id"] == first["message"]["id"] and again["cursor"] == first["cursor"]
        ws.send_text('{"type": "typing", "a": ' + "[" * 5000 + "]" * 5000 + "}")
        assert _next(ws, "error")["type"] == "error"
        ws.send_json({"type": "read_receipt", "message_id": "nope"})
        assert "message_id" in _next(ws, "error")["details"]
        ws.send_json({"type": "chat_message", "message": " "})
        assert "message" in _next(ws, "error")["details"]
    stored = api.get(f"/api/chat/messages/?room={room}", headers=crew["h"]["bob"]).json()
    assert stored["count"] == 1
    # A cursor beyond the log would silence every push below it: refused, and the socket goes on live.
    with _socket(api, "bob", room, "&since=999999999999") as ws:
        ws.receive_json(timeout=5)
        assert "ahead" in _next(ws, "error")["message"]
        api.post("/api/chat/messages/", json={"room": room, "content": "live"}, headers=crew["h"]["alice"])
        assert _next(ws, "chat_message")["message"]["content"] == "live"


def test_a_socket_whose_pushes_overflowed_is_closed_to_resume(api: Api, crew) -> None:
    """A socket that stopped reading must not go on with a silent gap (or miss the push that would end it): its
    queue's overflow closes it with 1013, and it reconnects with `since`."""
    room = _group(api, crew, "bob")
    hub = api.runtime.broker.hub
    with _socket(api, "bob", room) as ws:
        ws.receive_json(timeout=5)
        for queue in list(hub._queues):  # what a full queue does: the test transport never lets one fill
            hub._overflow(queue)
        assert _closed_with(ws) == 1013
