"""`WS /ws/chat/{room_id}/?token=<access>[&since=<cursor>]`: the chat contract's socket.

Server -> client: `connection_established`, then the room's events as the log has them (`chat_message`,
`message_updated`, `message_deleted`, `participant_joined`, `participant_left`, `read_receipt`, each with its
`cursor`), other participants' `typing`, `room_marked_read` after the client's `mark_room_read`, and `error`.
Client -> server: `chat_message`, `typing`, `read_receipt`, `mark_room_read`.

Resuming: with `since`, the room's events after that cursor are replayed first. The socket listens before it
replays, and drops live pushes at or below the last cursor it sent, so nothing falls in the gap and nothing comes
twice.

Close codes (sent after accepting: a refused handshake hides them): 4001 bad or expired token (or the session
ended), 4003 not a participant (also when removed or gone while connected), 4004 no such room, 1013 the socket
stopped reading until its pushes overflowed (reconnect with `since`: nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from uuid import UUID

import anyio
import anyio.to_thread
import msgspec
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect
from litestar.params import FromPath

from cosmo.api.deps import Context
from cosmo.api.security import user_for_claims
from cosmo.auth.tokens import InvalidToken
from cosmo.domain.actors import Actor
from cosmo.domain.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from cosmo.live import pushes
from cosmo.projections.chat.shapes import push_of

log = logging.getLogger(__name__)

INVALID_TOKEN, NOT_PARTICIPANT, NO_ROOM = 4001, 4003, 4004
MAX_FRAME = 64 * 1024  # bytes of one client message; anything longer is refused unread (uvicorn: close 1009)
RATE, BURST = 10.0, 10.0  # client messages per second a socket may send, and how many at once
TYPING_EXPIRES = 10.0  # seconds: an indicator nobody renews ends by itself
REPLAY_CHUNK = 500
QUEUE_SIZE = 1024


class Header(msgspec.Struct):
    """What the socket itself reads of a push before passing it on."""

    type: str = ""
    cursor: int | None = None
    user_id: int | None = None


_header = msgspec.json.Decoder(Header).decode
_incoming = msgspec.json.Decoder(dict[str, Any]).decode


class Bucket:
    """A token bucket: RATE messages a second, BURST at once."""

    def __init__(self) -> None:
        self.tokens, self.at = BURST, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(BURST, self.tokens + (now - self.at) * RATE)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _error(message: str, **extra: Any) -> str:
    return msgspec.json.encode({"type": "error", "message": message, **extra}).decode()


def _refusal(exc: DomainError) -> str:
    if isinstance(exc, ValidationFailed):
        return _error("Invalid message.", details=exc.details)
    if isinstance(exc, NotFound):
        return _error("Not found.")
    if isinstance(exc, PermissionDenied):
        return _error("Permission denied.")
    return _error(str(exc) or "Failed to process message")


def _uuid(field: str, raw: Any) -> UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return UUID(str(raw))
    except ValueError:
        raise ValidationFailed.one(field, "Must be a valid UUID.") from None


class ChatSession:
    """One connected socket: what it has sent (the last cursor), its typing indicator, its rate."""

    def __init__(self, socket: WebSocket[Any, Any, Any], ctx: Context, actor: Actor, username: str, room: str):
        self.socket, self.ctx, self.actor, self.username, self.room = socket, ctx, actor, username, room
        self.last = 0
        self.bucket = Bucket()
        self.typing_timer: asyncio.Task[None] | None = None

    async def send(self, text: str) -> None:
        await self.socket.send_text(text)

    async def replay(self, since: int) -> None:
        self.last = since
        media_url = self.ctx.services.runtime.media_url
        while True:
            rows = await self.ctx.chat.since(self.room, self.last, REPLAY_CHUNK)
            for row in rows:
                await self.send(msgspec.json.encode(push_of(row, media_url)).decode())
                self.last = row["position"]
            if len(rows) < REPLAY_CHUNK:
                return

    async def deliver(self, payload: bytes) -> bool:
        """Pass a room push on; False when it tells this socket its user is no longer in the room."""
        head = _header(payload)
        if head.cursor is not None:
            if head.cursor <= self.last:
                return True  # already sent by the replay
            self.last = head.cursor
        elif head.type == "typing" and head.user_id == self.actor.id:
            return True  # the typist's own sockets are not told
        await self.send(payload.decode())
        return not (head.type == "participant_left" and head.user_id == self.actor.id)

    # -- from the client ----------------------------------------------------------------------------------------------

    async def receive(self, text: str) -> None:
        if len(text) > MAX_FRAME or (len(text) > MAX_FRAME // 4 and len(text.encode()) > MAX_FRAME):
            await self.send(_error(f"Message too large: at most {MAX_FRAME} bytes."))
            return
        if not self.bucket.take():
            await self.send(_error(f"Too many messages: at most {RATE:.0f} a second; this one was dropped."))
            return
        try:
            message = _incoming(text)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            await self.send(_error("Invalid JSON: send an object with a `type`."))
            return
        kind = message.get("type")
        handler = {
            "chat_message": self._chat_message,
            "typing": self._typing,
            "read_receipt": self._read_receipt,
            "mark_room_read": self._mark_room_read,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            await self.send(_error(f"Unknown message type: {str(kind)[:50]!r}."))
            return
        try:
            await handler(message)
        except DomainError as exc:
            await self.send(_refusal(exc))
        except Exception:  # a bug must cost this one message an error event, not the socket
            log.exception("chat socket: %s failed", kind)
            await self.send(_error("Failed to process message"))

    async def _chat_message(self, message: dict[str, Any]) -> None:
        content = message.get("message", "")
        if not isinstance(content, str):
            raise ValidationFailed.one("message", "Must be text.")
        try:
            done = await self.ctx.chat_commands.send(
                self.actor,
                UUID(self.room),
                content,
                reply_to=_uuid("reply_to", message.get("reply_to")),
                client_id=_uuid("client_message_id", message.get("client_message_id")),
            )
        except ValidationFailed as refused:  # the socket's field is `message`, the command's `content`
            details = {("message" if k == "content" else k): v for k, v in refused.details.items()}
            raise ValidationFailed(details) from None
        await self._stop_typing(publish=self.typing_timer is not None)
        if not done.result.created:
            # A retry of a message stored before: its push went out then (maybe to a socket since lost), so this
            # socket is answered with it again, and the client can clear its queue.
            row = await self.ctx.chat.message_log(done.result.message_id)
            if row is not None:
                await self.send(msgspec.json.encode(push_of(row, self.ctx.services.runtime.media_url)).decode())

    async def _typing(self, message: dict[str, Any]) -> None:
        if message.get("is_typing") is True:
            if self.typing_timer is not None:
                self.typing_timer.cancel()
            else:
                await self._publish_typing(True)
            self.typing_timer = asyncio.create_task(self._expire_typing())
        else:
            await self._stop_typing(publish=True)

    async def _expire_typing(self) -> None:
        await asyncio.sleep(TYPING_EXPIRES)
        self.typing_timer = None
        await self._publish_typing(False)

    async def _stop_typing(self, publish: bool) -> None:
        if self.typing_timer is not None:
            self.typing_timer.cancel()
            self.typing_timer = None
        if publish:
            await self._publish_typing(False)

    async def _publish_typing(self, is_typing: bool) -> None:
        push = pushes.typing(self.room, self.actor.id, self.username, is_typing)
        await anyio.to_thread.run_sync(self.ctx.services.runtime.broker.publish, [push])

    async def _read_receipt(self, message: dict[str, Any]) -> None:
        target = _uuid("message_id", message.get("message_id"))
        if target is None:
            raise ValidationFailed.one("message_id", "This field is required.")
        await self.ctx.chat_commands.mark_message_read(self.actor, target, in_room=UUID(self.room))

    async def _mark_room_read(self, message: dict[str, Any]) -> None:
        await self.ctx.chat_commands.mark_room_read(self.actor, UUID(self.room))
        await self.send(msgspec.json.encode({"type": "room_marked_read", "room_id": self.room}).decode())

    async def close(self) -> None:
        await self._stop_typing(publish=self.typing_timer is not None)


def _since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else -1


@websocket("/ws/chat/{room:str}/", opt={"public": True})
async def chat_socket(socket: WebSocket[Any, Any, Any], room: FromPath[str], ctx: NamedDependency[Context]) -> None:
    await socket.accept()
    try:
        claims = ctx.services.tokens.decode(socket.query_params.get("token", ""), "access")
        user = await user_for_claims(socket, claims)
    except (InvalidToken, NotAuthorizedException):
        await socket.close(code=INVALID_TOKEN, reason="Token is invalid or expired")
        return
    actor = user.actor()
    standing = await ctx.chat.membership(room, actor.id)
    if standing != "member":
        code = NO_ROOM if standing == "absent" else NOT_PARTICIPANT
        await socket.close(code=code, reason="No such room" if code == NO_ROOM else "Not a participant")
        return
    key = str(UUID(room))
    hub = ctx.services.runtime.broker.hub
    queue = hub.register(pushes.room_channels_for(actor, key), maxsize=QUEUE_SIZE)  # before replaying: no gap
    session = ChatSession(socket, ctx, actor, user.username, key)
    closing: tuple[int, str] | None = None
    try:
        established = {
            "type": "connection_established",
            "room_id": key,
            "unread_count": await ctx.chat.unread_count(actor, key),
            "user_id": actor.id,
            "username": user.username,
        }
        await session.send(msgspec.json.encode(established).decode())
        since = _since(socket.query_params.get("since"))
        if since is not None and since < 0:
            await session.send(_error("`since` must be a cursor a push carried (a whole number)."))
        elif since is not None and since > await ctx.services.runtime.store.head():
            # Not a cursor this log gave (a reset database, a made-up number): replaying from it would drop every
            # push below it, so it is refused and the socket goes on live.
            await session.send(_error("`since` is ahead of the log: reconnect with a cursor a push carried."))
        elif since is not None:
            await session.replay(since)
        expires_in = claims.expires_at.timestamp() - time.time()
        with anyio.move_on_after(max(expires_in, 0)) as expiry:
            async with anyio.create_task_group() as tasks:

                async def from_client() -> None:
                    with contextlib.suppress(WebSocketDisconnect):
                        while True:
                            await session.receive(await socket.receive_data(mode="text"))
                    tasks.cancel_scope.cancel()

                tasks.start_soon(from_client)
                while closing is None:
                    channel, payload = await queue.get()
                    kind = pushes.kind_of(channel)
                    if kind == pushes.OVERFLOWED:
                        closing = (pushes.FELL_BEHIND, "Fell behind: reconnect with since")
                    elif kind == pushes.SESSION_ENDED:
                        closing = (INVALID_TOKEN, "Session ended")
                    elif not await session.deliver(payload):
                        closing = (NOT_PARTICIPANT, "No longer a participant")
                tasks.cancel_scope.cancel()
        if expiry.cancelled_caught:
            closing = (INVALID_TOKEN, "Token expired")
        if closing is not None:
            await socket.close(code=closing[0], reason=closing[1])
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(queue)
        with contextlib.suppress(Exception):
            await session.close()
