"""The audit chain: a hash for every stored event, linked to the previous event of the same entity, a running hash
over all of them in log order, and seals that sign the running hash now and then.

For each event at position P:

    digest  = SHA-256( "<originator_id>\\0<version>\\0<topic>\\0" + state bytes, as the event store holds them )
    link    = SHA-256( link of the entity's previous event (32 zero bytes for version 1) + P as 8 bytes + digest )
    running = SHA-256( running before P + link )

and a seal records (seq, P, running) with an HMAC-SHA-256 under the deployment's audit key. Changing an event
changes its digest; removing or moving one breaks its entity's links and the running hash; recomputing the chain to
hide either needs the audit key to sign the seals again. `verify.py` re-reads the store and checks all of it.

The chain is computed by the projection runner as events arrive (so it is exactly-once and shows lag in `cosmo
projections status`), but its tables belong to migration 0005, not to the projection: a rebuild never recomputes a
link that exists, because a rebuild reads the store as it is now, and the chain's worth is that it was computed
from the store as it was then.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eventsourcing.persistence import Notification

from cosmo.projections.base import Projection
from cosmo.storage.db import Cursor

ZERO = bytes(32)
KEPT_HEADS = 64  # running hashes this process remembers, by position
KEPT_LINKS = 100_000  # entities' latest links it remembers
SEAL_EVERY = 10_000  # events between seals at most...
SEAL_AFTER = timedelta(seconds=60)  # ...and time: a batch after this long since the last seal seals


def digest_of(originator_id: str, version: int, topic: str, state: bytes) -> bytes:
    return hashlib.sha256(f"{originator_id}\0{version}\0{topic}\0".encode() + bytes(state)).digest()


def link_of(previous: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(previous + position.to_bytes(8, "big") + digest).digest()


def fold(running: bytes, link: bytes) -> bytes:
    return hashlib.sha256(running + link).digest()


def audit_key(secret: str) -> bytes:
    """The key seals are signed with: COSMO_AUDIT_KEY, or one derived from COSMO_SECRET_KEY."""
    return hmac.new(secret.encode(), b"cosmo audit seals", hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """Names a key without revealing it, so a seal says which key signed it."""
    return hashlib.sha256(b"cosmo audit key id" + key).hexdigest()[:16]


def sign(key: bytes, seq: int, up_to: int, running: bytes) -> str:
    message = b"cosmo seal\0" + seq.to_bytes(8, "big") + up_to.to_bytes(8, "big") + running
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def previous_links(cur: Cursor, wanted: Sequence[tuple[str, int]]) -> dict[tuple[str, int], bytes]:
    """The stored links of (originator_id, version) pairs, each found through the (originator_id, version) index."""
    if not wanted:
        return {}
    if cur.is_postgres:
        rows = cur.execute(
            "SELECT c.originator_id, c.version, c.hash"
            " FROM unnest(string_to_array(%s, ','), string_to_array(%s, ',')::bigint[]) AS w (o, v)"
            " JOIN audit_chain c ON c.originator_id = w.o AND c.version = w.v",
            (",".join(o for o, _ in wanted), ",".join(str(v) for _, v in wanted)),  # packed: see apply_raw
        ).fetchall()
        return {(r["originator_id"], int(r["version"])): bytes(r["hash"]) for r in rows}
    found = {}
    for oid, version in wanted:  # SQLite answers in-process: a lookup each costs microseconds
        row = cur.execute(
            "SELECT hash FROM audit_chain WHERE originator_id = %s AND version = %s", (oid, version)
        ).fetchone()
        if row is not None:
            found[(oid, version)] = bytes(row["hash"])
    return found


class AuditChain(Projection):
    name = "audit_chain"
    version = 1
    tables = ()
    raw = True
    rebuildable = False

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self.key = key
        self.key_id = key_id(key)
        # What this process computed lately, so that a batch reads nothing back (each read inside a batch is a
        # round trip the batch waits for). Safe whether or not the batch that computed them committed: the running
        # hash at a position and an event's link are functions of the log up to there, and the runner says which
        # position is committed (`after`).
        self._running: OrderedDict[int, bytes] = OrderedDict()
        self._links: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._last_seal: tuple[int, int, datetime] | None = None  # seq, up_to, sealed_at: an older one is harmless

    def _remember(self, position: int, running: bytes, links: dict[tuple[str, int], bytes]) -> None:
        self._running[position] = running
        while len(self._running) > KEPT_HEADS:
            self._running.popitem(last=False)
        for key, link in links.items():
            self._links[key] = link
            self._links.move_to_end(key)
        while len(self._links) > KEPT_LINKS:
            self._links.popitem(last=False)

    def apply_raw(self, cur: Cursor, notifications: Sequence[Notification], names: dict[str, str]) -> None:
        if self.after in self._running:
            chained, running = self.after, self._running[self.after]
        else:
            head = cur.execute("SELECT position, running FROM audit_chain_head WHERE id = 1").fetchone()
            chained, running = (int(head["position"]), bytes(head["running"])) if head else (0, ZERO)
        todo = [n for n in notifications if n.id > chained]
        if not todo:
            return
        first: dict[str, int] = {}
        for n in todo:
            first.setdefault(str(n.originator_id), n.originator_version)
        wanted = [(oid, v - 1) for oid, v in first.items() if v > 1]
        stored = {key: self._links[key] for key in wanted if key in self._links}
        stored.update(previous_links(cur, [key for key in wanted if key not in stored]))
        last: dict[str, bytes] = {}
        made: dict[tuple[str, int], bytes] = {}
        rows: list[tuple[Any, ...]] = []
        for n in todo:
            oid, version = str(n.originator_id), n.originator_version
            previous = last.get(oid)
            if previous is None:
                # A missing earlier link (an event removed before it was chained) links to zeros: the chain goes
                # on, and verification reports the gap in the entity's versions.
                previous = stored.get((oid, version - 1), ZERO) if version > 1 else ZERO
            digest = digest_of(oid, version, n.topic, n.state)
            link = last[oid] = made[(oid, version)] = link_of(previous, n.id, digest)
            running = fold(running, link)
            rows.append((n.id, oid, version, digest, link))
        if cur.is_postgres:
            # The chain is on every batch's path. One statement, its parameters packed (numbers and ids as one
            # comma-joined text each, hashes as one byte string each) because psycopg binds a row or an array
            # element at a time in Python: this is about four times faster than executemany or unnest of arrays.
            cur.execute(
                "INSERT INTO audit_chain (position, originator_id, version, digest, hash)"
                " SELECT w.p, w.o, w.v, substring(%s::bytea FROM (w.i::int - 1) * 32 + 1 FOR 32),"
                " substring(%s::bytea FROM (w.i::int - 1) * 32 + 1 FOR 32)"
                " FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ','),"
                " string_to_array(%s, ',')::bigint[]) WITH ORDINALITY AS w (p, o, v, i)",
                (
                    b"".join(r[3] for r in rows),
                    b"".join(r[4] for r in rows),
                    ",".join(str(r[0]) for r in rows),
                    ",".join(r[1] for r in rows),
                    ",".join(str(r[2]) for r in rows),
                ),
            )
        else:
            cur.executemany(
                "INSERT INTO audit_chain (position, originator_id, version, digest, hash) VALUES (%s, %s, %s, %s, %s)",
                rows,
            )
        end = todo[-1].id
        cur.execute(
            "INSERT INTO audit_chain_head (id, position, running) VALUES (1, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET position = excluded.position, running = excluded.running",
            (end, running),
        )
        self._remember(end, running, made)
        self._seal(cur, end, running)

    def _due(self, last: tuple[int, int, datetime] | None, end: int, now: datetime) -> bool:
        return last is None or end - last[1] >= SEAL_EVERY or now - last[2] >= SEAL_AFTER

    def _seal(self, cur: Cursor, end: int, running: bytes) -> None:
        now = datetime.now(UTC)
        # The seal last seen here is never newer than the latest stored, so "not due" by it is "not due" by that.
        if not self._due(self._last_seal, end, now):
            return
        row = cur.execute("SELECT seq, up_to, sealed_at FROM audit_seals ORDER BY seq DESC LIMIT 1").fetchone()
        last = (int(row["seq"]), int(row["up_to"]), row["sealed_at"]) if row else None
        self._last_seal = last
        if not self._due(last, end, now):
            return
        seq = last[0] + 1 if last else 1
        events = cur.execute("SELECT count(*) AS n FROM audit_chain WHERE position > %s", (last[1] if last else 0,))
        counted = events.fetchone()
        sealed = int(counted["n"]) if counted else 0
        cur.execute(
            "INSERT INTO audit_seals (seq, up_to, events, running, key_id, signature, sealed_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (seq, end, sealed, running, self.key_id, sign(self.key, seq, end, running), now),
        )
        self._last_seal = (seq, end, now)
