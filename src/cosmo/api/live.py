"""`WS /ws/notifications/?token=<access>`: pushes `{"type": "notification", ...}` when the user gets a notification
and `{"type": "task_counts", ...}` whenever their task counts change (and once on connect).

The token is checked after accepting, so a bad or expired one can be refused with close code 4001, which a client
sees (a refused handshake hides it). The socket is closed with 4001 when the token expires, too, and as soon as
the user is deactivated or changes their password.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import anyio
import msgspec
from litestar import WebSocket, websocket
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect

from cosmo.api.notifications import task_counts
from cosmo.api.security import CurrentUser, user_for_claims
from cosmo.api.state import services_of
from cosmo.auth.tokens import InvalidToken
from cosmo.domain.ids import aggregate_id
from cosmo.domain.tasks import sees_all_tasks, unassigned_types_seen

INVALID_TOKEN = 4001
# Counts nudges arriving within this window are answered with one recount.
COUNTS_SETTLE_SECONDS = 0.05


def channels_for(user: CurrentUser) -> list[str]:
    """What a user's socket listens to: their own notifications, the end of their session (deactivated, password
    changed), and the count scopes their visibility spans (the same rule as the task lists, from domain/tasks.py)."""
    channels = [f"user:{user.id}", f"session:{aggregate_id('user', user.id)}"]
    if sees_all_tasks(user.role):
        return [*channels, "counts:all"]
    return [*channels, f"counts:user:{user.id}", *(f"counts:type:{t}" for t in unassigned_types_seen(user.task_group))]


@websocket("/ws/notifications/", opt={"public": True})
async def notifications_socket(socket: WebSocket[Any, Any, Any]) -> None:
    services = services_of(socket)
    await socket.accept()
    try:
        claims = services.runtime.tokens.decode(socket.query_params.get("token", ""), "access")
        user = await user_for_claims(socket, claims)
    except (InvalidToken, NotAuthorizedException):
        await socket.close(code=INVALID_TOKEN, reason="Token is invalid or expired")
        return
    hub = services.runtime.broker.hub
    queue = hub.register(channels_for(user))
    expires_in = claims.expires_at.timestamp() - time.time()
    ended = False
    try:
        last_counts = await task_counts(services.reader, user)
        await socket.send_text(msgspec.json.encode({"type": "task_counts", **last_counts}).decode())
        with anyio.move_on_after(max(expires_in, 0)) as expiry:
            async with anyio.create_task_group() as tasks:

                async def until_client_leaves() -> None:
                    with contextlib.suppress(WebSocketDisconnect):
                        while True:
                            await socket.receive_data(mode="text")  # clients send nothing we act on
                    tasks.cancel_scope.cancel()

                tasks.start_soon(until_client_leaves)
                while not ended:
                    channel, payload = await queue.get()
                    if channel.startswith("user:"):
                        await socket.send_text(payload.decode())
                        continue
                    ended = channel.startswith("session:")
                    if not ended:
                        # Let a burst of nudges arrive, answer them with one recount; notifications among them go.
                        await asyncio.sleep(COUNTS_SETTLE_SECONDS)
                    while not queue.empty() and not ended:
                        channel, payload = queue.get_nowait()
                        ended = channel.startswith("session:")
                        if channel.startswith("user:"):
                            await socket.send_text(payload.decode())
                    if ended:
                        tasks.cancel_scope.cancel()
                        continue
                    counts = await task_counts(services.reader, user)
                    if counts != last_counts:
                        last_counts = counts
                        await socket.send_text(msgspec.json.encode({"type": "task_counts", **counts}).decode())
        if ended:
            await socket.close(code=INVALID_TOKEN, reason="Session ended")
        elif expiry.cancelled_caught:
            await socket.close(code=INVALID_TOKEN, reason="Token expired")
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(queue)
