"""The baseline for chat fan-out (bench/chat.py): a bare Litestar WebSocket that broadcasts every `chat_message` it
receives to every socket of the room, in every process, through Litestar's ChannelsPlugin on Redis pub/sub. No
authentication, no persistence, no projection: only what any multi-process broadcast must do.

    WS /ws/bare/{room}/?user=<id>      server sends `connection_established`, then every room push
    GET /bare/ready/                   readiness probe

A client sends {"type": "chat_message", "message": "...", "client_message_id": "..."}; every socket of the room (the
sender's too) gets {"type": "chat_message", "cursor": N, "message": {...}} shaped as Cosmo's socket push. The cursor
is a per-process counter (no shared sequence: that would cost a round trip Cosmo's log pays for). The handler awaits
the Redis publish before reading the client's next frame, as Cosmo's socket awaits its save.

Environment: BENCH_REDIS (redis://host:port/db), BENCH_BARE_PREFIX (the pub/sub channel prefix; bench/chat.py sets a
unique one per run, so the channel cannot collide with Cosmo's or another run's). Redis pub/sub channels ignore the
database number, hence the prefix.
"""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Litestar, WebSocket, get, websocket
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.redis import RedisChannelsPubSubBackend
from litestar.exceptions import WebSocketDisconnect
from redis.asyncio import Redis

REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
PREFIX = os.environ.get("BENCH_BARE_PREFIX", "cosmo-bench-bare-chat")

channels = ChannelsPlugin(
    backend=RedisChannelsPubSubBackend(redis=Redis.from_url(REDIS)),
    arbitrary_channels_allowed=True,
)
_counter = itertools.count(1)
_encode = msgspec.json.Encoder().encode
_incoming = msgspec.json.Decoder(dict[str, Any]).decode


def room_channel(room: str) -> str:
    return f"{PREFIX}:room:{room}"


def _error(message: str) -> str:
    return _encode({"type": "error", "message": message}).decode()


@get("/bare/ready/")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@websocket("/ws/bare/{room:str}/")
async def bare_chat(socket: WebSocket[Any, Any, Any], room: str) -> None:
    await socket.accept()
    raw_user = socket.query_params.get("user", "0")
    user = int(raw_user) if raw_user.isdigit() else 0
    username = f"user{user}"
    channel = room_channel(room)
    async with channels.start_subscription(channel) as subscriber:
        established = {
            "type": "connection_established",
            "room_id": room,
            "unread_count": 0,
            "user_id": user,
            "username": username,
        }
        await socket.send_text(_encode(established).decode())
        # join=False: a closed socket's unsent pushes are dropped, not waited for.
        async with subscriber.run_in_background(socket.send_text, join=False):
            try:
                while True:
                    text = await socket.receive_data(mode="text")
                    try:
                        message = _incoming(text)
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        await socket.send_text(_error("Invalid JSON: send an object with a `type`."))
                        continue
                    if message.get("type") != "chat_message":
                        continue
                    now = datetime.now(UTC)
                    push = {
                        "type": "chat_message",
                        "cursor": next(_counter),
                        "message": {
                            "id": str(uuid.uuid4()),
                            "room_id": room,
                            "sender": {"id": user, "username": username, "full_name": username},
                            "content": message.get("message", ""),
                            "message_type": "text",
                            "reply_to_id": None,
                            "created_at": now,
                            "is_edited": False,
                            "edited_at": None,
                            "is_deleted": False,
                            "attachment": None,
                            "attachment_name": "",
                            "attachment_size": None,
                            "client_message_id": message.get("client_message_id"),
                        },
                    }
                    await channels.wait_published(_encode(push), channel)
            except WebSocketDisconnect:
                pass


app = Litestar([ready, bare_chat], plugins=[channels])
