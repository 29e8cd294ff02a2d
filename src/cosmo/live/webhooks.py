"""Webhook delivery: the worker that empties the outbox, to the Standard Webhooks specification.

Each delivery is a POST of the message's body, signed with the `standardwebhooks` package (`webhook-id` stays the
same on every attempt, so receivers can deduplicate). Only a 2xx is success. A failure is retried on the
schedule in domain/webhooks.py with jitter, later if the receiver's `Retry-After` asks; 410 Gone disables the
endpoint, as does failing for FAILING_LIMIT; redirects are not followed; every attempt gives up after 15 s.

Many deliveries are in flight at once (at most PER_ENDPOINT per endpoint), so a slow endpoint holds up only its
own. One process delivers at a time (the `webhooks` lease), woken when the outbox projection moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import httpx
from standardwebhooks import Webhook as Signer

from cosmo.domain.webhooks import FAILING_LIMIT, retry_delay
from cosmo.live.egress import EgressGuard, EgressRefused
from cosmo.live.webhook_bodies import Bodies
from cosmo.projections.positions import PositionBoard
from cosmo.projections.webhooks.outbox import Due, Endpoint, Outbox

log = logging.getLogger(__name__)
# httpx logs every request's URL at INFO: a receiver's URL may carry its own token, and a log is no place for it.
logging.getLogger("httpx").setLevel(logging.WARNING)

Clock = Callable[[], datetime]
Disable = Callable[[int, str], Awaitable[None]]

LEASE = "webhooks"
LEASE_TTL = timedelta(seconds=15)
TIMEOUT = 15.0
IN_FLIGHT = 256
PER_ENDPOINT = 8
BATCH = 500
REFILL = 0.02  # seconds finished deliveries gather before the outbox is read again
POLL = 1.0  # seconds between looks at the outbox when nothing wakes the worker (retries coming due)
RETRY_AFTER_MAX = 24 * 3600
JITTER = 0.1  # a retry comes up to 10% earlier or later than scheduled, so failures do not retry in lockstep
GONE = "The receiver answered 410 Gone."
FAILING = "No delivery succeeded for 5 days."
USER_AGENT = "Cosmo-Webhooks/1.0"


def utc_now() -> datetime:
    return datetime.now(UTC)


def retry_after(value: str | None, now: datetime) -> int | None:
    """The receiver's `Retry-After`, in seconds (a number, or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(int(value), RETRY_AFTER_MAX)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, min(int((when - now).total_seconds()), RETRY_AFTER_MAX))


def signed_headers(due: Due, endpoint: Endpoint, body: bytes, now: datetime) -> dict[str, str]:
    text = body.decode()
    signatures = " ".join(Signer(key).sign(due.message_id, now, text) for key in endpoint.secrets)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": due.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }


def pinned(url: str, address: str) -> tuple[str, dict[str, str]]:
    """`url` with its host replaced by the checked `address`, and what keeps the request about the host: its Host
    header and, for https, the name TLS checks the certificate against."""
    parts = httpx.URL(url)
    return str(parts.copy_with(host=address)), {"host": parts.netloc.decode("ascii")}


class Deliverer:
    def __init__(
        self,
        outbox: Outbox,
        bodies: Bodies,
        guard: EgressGuard,
        disable: Disable,
        board: PositionBoard | None = None,
        *,
        clock: Clock = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
        poll: float = POLL,
    ):
        self.outbox = outbox
        self.bodies = bodies
        self.guard = guard
        self._disable = disable
        self._board = board
        self.clock = clock
        self._transport = transport
        self._poll = poll
        self._client: httpx.AsyncClient | None = None
        self._holder = uuid.uuid4().hex
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._per_endpoint: dict[int, int] = {}
        self._healthy: set[int] = set()  # endpoints whose health row says so: a success writes only on a change
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # a delivery finished: its endpoint has room again
        self._running: asyncio.Task[None] | None = None
        # Deliveries that finished while `step` read the outbox: the read may still show them open.
        self._finished: set[str] = set()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                timeout=TIMEOUT,
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would see (and could reroute) every delivery
                limits=httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=64),
            )
        return self._client

    # -- the loop ------------------------------------------------------------------------------------------------

    async def run_forever(self) -> None:
        self._running = asyncio.current_task()
        while not self._stop.is_set():
            try:
                if await self.outbox.hold_lease(LEASE, self._holder, self.clock(), LEASE_TTL):
                    await self.step()
            except Exception:  # the database went away, say: the outbox keeps everything, so try again later
                log.exception("webhook delivery failed; trying again")
            await self._pause()

    async def _pause(self) -> None:
        """Until the outbox projection moves (new deliveries), a delivery finishes (room for the next), POLL
        seconds pass (retries coming due), or stop."""
        if self._wake.is_set():
            self._wake.clear()
            await asyncio.sleep(REFILL)  # let finishing deliveries gather: one read of the outbox for several
            return
        waits = [asyncio.ensure_future(self._stop.wait()), asyncio.ensure_future(self._wake.wait())]
        if self._board is not None:
            seen = self._board.position("webhooks")
            waits.append(asyncio.ensure_future(self._board.wait_async(["webhooks"], seen + 1, self._poll)))
        _, pending = await asyncio.wait(waits, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        self._wake.clear()

    async def stop(self) -> None:
        self._stop.set()
        running, self._running = self._running, None
        if running is not None and running is not asyncio.current_task():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(running), self._poll + 5)
        await self.idle(timeout=TIMEOUT + 1)
        with contextlib.suppress(Exception):
            await self.outbox.release_lease(LEASE, self._holder)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def idle(self, timeout: float | None = None) -> None:
        """Wait for the deliveries in flight to finish."""
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()), timeout=timeout)

    async def step(self) -> int:
        """Start every due delivery there is room for; returns how many started."""
        now = self.clock()
        room = IN_FLIGHT - len(self._in_flight)
        if room <= 0:
            return 0
        self._finished.clear()
        found = await self.outbox.due(now, BATCH, PER_ENDPOINT)
        due = [d for d in found if d.id not in self._in_flight and d.id not in self._finished]
        endpoints = await self.outbox.endpoints(sorted({d.webhook_id for d in due}), now)
        if self._stop.is_set():
            return 0
        started = 0
        for d in due:
            if started >= room:
                break
            if self._per_endpoint.get(d.webhook_id, 0) >= PER_ENDPOINT:
                continue
            self._per_endpoint[d.webhook_id] = self._per_endpoint.get(d.webhook_id, 0) + 1
            task = asyncio.get_running_loop().create_task(self._attempt(d, endpoints.get(d.webhook_id)))
            self._in_flight[d.id] = task
            task.add_done_callback(lambda _, d=d: self._done(d))
            started += 1
        return started

    def _done(self, d: Due) -> None:
        self._in_flight.pop(d.id, None)
        self._finished.add(d.id)
        self._wake.set()
        left = self._per_endpoint.get(d.webhook_id, 1) - 1
        if left > 0:
            self._per_endpoint[d.webhook_id] = left
        else:
            self._per_endpoint.pop(d.webhook_id, None)

    async def drain(self) -> int:
        """Deliver until nothing is due now (tests drive a worker on a fake clock with it); returns attempts made."""
        made = 0
        while True:
            started = await self.step()
            await self.idle()
            if not started:
                return made
            made += started

    # -- one attempt -----------------------------------------------------------------------------------------------

    async def _attempt(self, due: Due, endpoint: Endpoint | None) -> None:
        try:
            await self._send(due, endpoint)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", due.id)

    async def _send(self, due: Due, endpoint: Endpoint | None) -> None:
        if endpoint is None or not endpoint.is_active:
            await self.outbox.cancelled(due.id)
            return
        now = self.clock()
        try:
            body = self.bodies.cached(due) or await anyio.to_thread.run_sync(self.bodies.body, due)
        except Exception as exc:
            log.exception("the body of webhook message %s could not be built", due.message_id)
            await self._failed(due, endpoint, now, None, None, f"The message could not be built: {type(exc).__name__}")
            return
        try:
            target = self.guard.known(endpoint.url) or await anyio.to_thread.run_sync(self.guard.target, endpoint.url)
        except EgressRefused as exc:
            await self._failed(due, endpoint, now, None, None, str(exc))
            return
        url, host = pinned(endpoint.url, target.address)
        headers = {**signed_headers(due, endpoint, body, now), **host}
        started = time.monotonic()
        try:
            response = await self._http().post(
                url, content=body, headers=headers, extensions={"sni_hostname": target.host}
            )
        except httpx.TimeoutException:
            await self._failed(due, endpoint, now, None, _ms(started), f"No answer within {TIMEOUT:.0f} s.")
            return
        except httpx.HTTPError as exc:
            await self._failed(due, endpoint, now, None, _ms(started), f"{type(exc).__name__}: {exc}")
            return
        ms = _ms(started)
        if 200 <= response.status_code < 300:
            await self.outbox.delivered(due.id, now, response.status_code, ms)
            if endpoint.id not in self._healthy:
                await self.outbox.healthy(endpoint.id, now)
                self._healthy.add(endpoint.id)
        elif response.status_code == 410:
            await self.outbox.failed(due.id, now, 410, ms, GONE, None)
            await self._disable(endpoint.id, GONE)
        else:
            wait = retry_after(response.headers.get("retry-after"), now)
            await self._failed(due, endpoint, now, response.status_code, ms, f"HTTP {response.status_code}", wait)

    async def _failed(
        self,
        due: Due,
        endpoint: Endpoint,
        now: datetime,
        status: int | None,
        ms: int | None,
        error: str,
        asked_wait: int | None = None,
    ) -> None:
        delay = retry_delay(due.attempts + 1)
        retry_at = None
        if delay is not None:
            jittered = delay * random.uniform(1 - JITTER, 1 + JITTER)  # noqa: S311 - spreading retries, not a secret
            retry_at = now + timedelta(seconds=max(jittered, asked_wait or 0))
        await self.outbox.failed(due.id, now, status, ms, error, retry_at)
        self._healthy.discard(endpoint.id)
        since = await self.outbox.failing_since(endpoint.id, now)
        if now - since >= FAILING_LIMIT:
            await self._disable(endpoint.id, FAILING)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
