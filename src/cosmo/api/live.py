"""`WS /ws/notifications/?token=<access>`: pushes `{"type": "notification", ...}` when the user gets a notification
and `{"type": "task_counts", ...}` whenever their task counts change (and once on connect).

The token is checked after accepting, so a bad or expired one can be refused with close code 4001, which a client
sees (a refused handshake hides it). The socket is closed with 4001 when the token expires, too, and as soon as
the user is deactivated or changes their password; with 1013 when it stopped reading for so long that its pushes
overflowed (reconnect: the counts come again on connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import anyio
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, WebSocketDisconnect

from cosmo.api.deps import Context
from cosmo.api.security import user_for_claims
from cosmo.auth.tokens import InvalidToken
from cosmo.live import pushes

INVALID_TOKEN = 4001
# Counts nudges arriving within this window are answered with one recount.
COUNTS_SETTLE_SECONDS = 0.05


@websocket("/ws/notifications/", opt={"public": True})
async def notifications_socket(
    socket: WebSocket[Any, Any, Any],
    ctx: NamedDependency[Context],
) -> None:
    await socket.accept()
    try:
        claims = ctx.services.tokens.decode(socket.query_params.get("token", ""), "access")
        actor = (await user_for_claims(socket, claims)).actor()
    except (InvalidToken, NotAuthorizedException):
        await socket.close(code=INVALID_TOKEN, reason="Token is invalid or expired")
        return
    hub = ctx.services.runtime.broker.hub
    queue = hub.register(pushes.channels_for(actor))
    expires_in = claims.expires_at.timestamp() - time.time()
    ended = False
    fell_behind = False
    try:
        last_counts = await ctx.counts.for_actor(actor)
        await socket.send_text(pushes.counts_push(last_counts))
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
                    kind = pushes.kind_of(channel)
                    if kind == pushes.OVERFLOWED:
                        ended = fell_behind = True
                        tasks.cancel_scope.cancel()
                        continue
                    if kind == pushes.NOTIFICATION:
                        await socket.send_text(payload.decode())
                        continue
                    ended = kind == pushes.SESSION_ENDED
                    if not ended:
                        # Let a burst of nudges arrive, answer them with one recount; notifications among them go.
                        await asyncio.sleep(COUNTS_SETTLE_SECONDS)
                    while not queue.empty() and not ended:
                        channel, payload = queue.get_nowait()
                        kind = pushes.kind_of(channel)
                        fell_behind = kind == pushes.OVERFLOWED
                        ended = kind in (pushes.SESSION_ENDED, pushes.OVERFLOWED)
                        if kind == pushes.NOTIFICATION:
                            await socket.send_text(payload.decode())
                    if ended:
                        tasks.cancel_scope.cancel()
                        continue
                    now = await ctx.counts.for_actor(actor)
                    if now != last_counts:
                        last_counts = now
                        await socket.send_text(pushes.counts_push(now))
        if fell_behind:
            await socket.close(code=pushes.FELL_BEHIND, reason="Fell behind: reconnect")
        elif ended:
            await socket.close(code=INVALID_TOKEN, reason="Session ended")
        elif expiry.cancelled_caught:
            await socket.close(code=INVALID_TOKEN, reason="Token expired")
    except WebSocketDisconnect:
        pass
    finally:
        hub.unregister(queue)
