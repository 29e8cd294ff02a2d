"""Re-reads the event store and checks it against the audit chain (chain.py): every event's digest, every entity's
links, the running hash at every seal and every seal's signature. Reports the first broken link.

What each kind of tampering looks like here:
- an edited event: its digest differs from the one chained when it was new (`edited`);
- a moved event (two events' places swapped): its digest is the one chained at another position (`reordered`);
- a deleted event: the chain has a link where the store has no event, or (link deleted too) the entity's versions
  skip one, or the running hash at the next seal differs (`deleted`);
- an event written into the store behind Cosmo's back, where the chain had already passed (`inserted`);
- a changed link, a changed, removed or re-signed seal (`chain`, `seal`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application

from cosmo.projections.audit.chain import ZERO, key_id, previous_links, sign
from cosmo.storage.db import Database

CHUNK = 20_000
INFINITY = float("inf")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Problem:
    kind: str  # edited, reordered, deleted, inserted, chain, seal
    position: int
    message: str


@dataclass(frozen=True)
class Verification:
    started_at: datetime
    finished_at: datetime
    since: int  # verified the log after this position (0: from the start)
    up_to: int  # the last position checked
    events: int
    seals: int
    unchained: int  # events after the chain's head: written, not yet chained
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class Broken(Exception):
    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


class Verifier:
    def __init__(self, app: Application, db: Database, key: bytes):
        self.app = app
        self.db = db
        self.key = key
        self.key_id = key_id(key)
        self._names: dict[str, str] = {}

    # -- reading the store ----------------------------------------------------------------------------------------

    def _events_after(self, after: int, limit: int) -> list[tuple[int, str, int, str, bytes]]:
        recorder: Any = self.app.recorder
        if self.db.is_postgres:
            table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
            sql = (
                f"SELECT notification_id, originator_id::text, originator_version, topic, state FROM {table}"
                " WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
            )
        else:
            # The library keeps SQLite's ids as bare hex; the chain names them as UUIDs are written.
            uuid = (
                "substr(originator_id, 1, 8) || '-' || substr(originator_id, 9, 4) || '-' || substr(originator_id,"
                " 13, 4) || '-' || substr(originator_id, 17, 4) || '-' || substr(originator_id, 21)"
            )
            sql = (
                f"SELECT rowid, {uuid}, originator_version, topic, state FROM {recorder.events_table_name}"
                " WHERE rowid > %s ORDER BY rowid LIMIT %s"
            )
        return self.db.tuples(sql, (after, limit))  # type: ignore[return-value]

    def _links(self, after: int, up_to: int) -> list[tuple[int, str, int, bytes, bytes]]:
        return self.db.tuples(  # type: ignore[return-value]
            "SELECT position, originator_id, version, digest, hash FROM audit_chain WHERE position > %s"
            " AND position <= %s ORDER BY position",
            (after, up_to),
        )

    def _seals_after(self, after: int) -> Iterator[dict[str, Any]]:
        yield from self.db.fetchall("SELECT * FROM audit_seals WHERE up_to > %s ORDER BY seq", (after,))

    def _name(self, originator_id: str) -> str:
        """How a problem names an entity: as the audit API does (`task 12`), else by its UUID."""
        if originator_id not in self._names:
            row = self.db.fetchone(
                "SELECT entity, entity_id FROM audit_entities_view WHERE originator_id = %s", (originator_id,)
            )
            self._names[originator_id] = f"{row['entity']} {row['entity_id']}" if row else originator_id
        return self._names[originator_id]

    def _chained_at(self, digest: bytes) -> int | None:
        row = self.db.fetchone("SELECT position FROM audit_chain WHERE digest = %s", (digest,))
        return int(row["position"]) if row else None

    # -- checking --------------------------------------------------------------------------------------------------

    def _signed(self, seal: Any) -> bool:
        """The seal's signature is this deployment's key's over its seq, position and running hash."""
        expected = sign(self.key, int(seal["seq"]), int(seal["up_to"]), bytes(seal["running"]))
        return hmac.compare_digest(expected, str(seal["signature"]))

    def _check_seal(self, seal: dict[str, Any], expected_seq: int, running: bytes, at: int) -> None:
        seq, up_to = int(seal["seq"]), int(seal["up_to"])
        if seq != expected_seq:
            raise Broken(Problem("seal", up_to, f"seal #{expected_seq} is missing (the next seal is #{seq})"))
        if seal["key_id"] != self.key_id:  # told apart from a bad signature: the message says which key
            raise Broken(
                Problem(
                    "seal",
                    up_to,
                    f"seal #{seq} (up to event {up_to}) names key {seal['key_id']}, not this deployment's audit key"
                    f" ({self.key_id}): forged, or signed before COSMO_AUDIT_KEY changed",
                )
            )
        if not self._signed(seal):
            raise Broken(Problem("seal", up_to, f"seal #{seq} (up to event {up_to}) has a forged signature"))
        if bytes(seal["running"]) != running or at != up_to:
            raise Broken(
                Problem(
                    "deleted" if at < up_to else "seal",
                    up_to,
                    f"seal #{seq} does not match the log up to event {up_to}: an event before it was removed or"
                    " changed together with its chain link, or the seal was altered",
                )
            )

    def _start(self, since: int) -> tuple[int, bytes, int]:
        """Where to begin: the last seal at or before `since` (its signature checked), or the beginning."""
        if since <= 0:
            return 0, ZERO, 1
        row = self.db.fetchone("SELECT * FROM audit_seals WHERE up_to <= %s ORDER BY seq DESC LIMIT 1", (since,))
        if row is None:
            return 0, ZERO, 1
        if row["key_id"] != self.key_id or not self._signed(row):
            where = int(row["up_to"])
            raise Broken(Problem("seal", where, f"seal #{row['seq']}, where verification starts, is forged"))
        return int(row["up_to"]), bytes(row["running"]), int(row["seq"]) + 1

    def position_at(self, moment: datetime | None) -> int:
        """Where `--since TIME` starts: the last seal sealed at or before it (0: none)."""
        if moment is None:
            return 0
        row = self.db.fetchone(
            "SELECT up_to FROM audit_seals WHERE sealed_at <= %s ORDER BY seq DESC LIMIT 1", (moment,)
        )
        return int(row["up_to"]) if row else 0

    def _check_anchor(self, anchor: tuple[int, str]) -> None:
        """A seal the auditor kept elsewhere must still be in the store as it was: the newest seals removed, and
        the chain after the remaining ones recomputed, is otherwise a consistent log."""
        seq, signature = anchor
        row = self.db.fetchone("SELECT seq, up_to, signature FROM audit_seals WHERE seq = %s", (seq,))
        if row is None or not hmac.compare_digest(str(row["signature"]), signature):
            what = "is gone" if row is None else "has another signature"
            raise Broken(Problem("seal", int(row["up_to"]) if row else 0, f"the expected seal #{seq} {what}"))

    def run(
        self, since: int = 0, progress: Progress | None = None, anchor: tuple[int, str] | None = None
    ) -> Verification:
        started = datetime.now(UTC)
        head_row = self.db.fetchone("SELECT position, running FROM audit_chain_head WHERE id = 1")
        chained = int(head_row["position"]) if head_row else 0
        head = int(self.app.recorder.max_notification_id() or 0)
        counted = {"events": 0, "seals": 0, "at": 0}
        begin = 0
        try:
            if anchor is not None:
                self._check_anchor(anchor)
            begin, running, next_seq = self._start(since)
            counted["at"] = begin
            self._walk(begin, running, next_seq, chained, head, counted, progress)
            problem = None
        except Broken as exc:
            problem = exc.problem
        return Verification(
            started_at=started,
            finished_at=datetime.now(UTC),
            since=begin,
            up_to=counted["at"],
            events=counted["events"],
            seals=counted["seals"],
            unchained=max(head - chained, 0),
            problem=problem,
        )

    def _chunk(self, after: int, chained: int) -> tuple[list, list, int, bool]:
        """The next CHUNK events after `after` and the chain's links over the same positions."""
        events = self._events_after(after, CHUNK)
        full = len(events) == CHUNK
        up_to = events[-1][0] if full else max(chained, events[-1][0] if events else after)
        return events, self._links(after, up_to), up_to, full

    def _walk(
        self,
        after: int,
        running: bytes,
        next_seq: int,
        chained: int,
        head: int,
        counted: dict[str, int],
        progress: Progress | None,
    ) -> None:
        seals = self._seals_after(after)
        seal = next(seals, None)
        last: dict[str, tuple[int, bytes]] = {}  # entity -> its latest version and link
        since_mode = after > 0
        sha256 = hashlib.sha256
        # The next chunk is read while this one is checked: the driver waits on the network without the GIL.
        with ThreadPoolExecutor(max_workers=1) as reader:
            ahead = reader.submit(self._chunk, after, chained)
            while True:
                events, links, up_to, full = ahead.result()
                if full:
                    ahead = reader.submit(self._chunk, up_to, chained)
                if since_mode:
                    self._prefetch(events, last)
                seal_at = int(seal["up_to"]) if seal is not None else INFINITY
                i, n_links, at, checked = 0, len(links), counted["at"], 0
                try:
                    for position, oid, version, topic, state in events:
                        if i < n_links and links[i][0] < position:
                            self._deleted(links[i])
                        while seal_at < position:
                            self._check_seal(seal, next_seq, running, at)
                            counted["seals"] += 1
                            next_seq += 1
                            seal = next(seals, None)
                            seal_at = int(seal["up_to"]) if seal is not None else INFINITY
                        if i == n_links or links[i][0] != position:
                            if position <= chained:
                                self._inserted(position, oid, version)
                            return  # the rest is not chained yet
                        _, link_oid, link_version, link_digest, link_hash = links[i]
                        i += 1
                        if type(state) is not bytes:  # tampered with in place: SQLite keeps whatever type was written
                            state = state.encode() if isinstance(state, str) else str(state).encode()
                        # digest_of, link_of and fold (chain.py), written out: this loop runs once per stored event
                        digest = sha256(f"{oid}\0{version}\0{topic}\0".encode() + state).digest()
                        if digest != link_digest or oid != link_oid or version != link_version:
                            self._changed(position, oid, version, digest, (link_oid, link_version))
                        previous = last.get(oid)
                        if previous is None:
                            if version != 1:
                                self._gap(position, oid, None, version)
                            previous_link = ZERO
                        else:
                            if version != previous[0] + 1:
                                self._gap(position, oid, previous[0], version)
                            previous_link = previous[1]
                        hashed = sha256(previous_link + position.to_bytes(8, "big") + digest).digest()
                        if hashed != link_hash:
                            self._altered(position, oid, version)
                        last[oid] = (version, hashed)
                        running = sha256(running + hashed).digest()
                        at = position
                        checked += 1
                finally:
                    counted["events"] += checked
                    counted["at"] = at
                if i < n_links:  # links past the last event: those events were removed
                    self._deleted(links[i])
                if progress:
                    progress(at, max(head, at))
                if not full:
                    break
        while seal is not None:
            self._check_seal(seal, next_seq, running, counted["at"])
            counted["seals"] += 1
            next_seq += 1
            seal = next(seals, None)

    # -- what a broken link is called -------------------------------------------------------------------------------

    def _inserted(self, position: int, oid: str, version: Any) -> None:
        raise Broken(
            Problem(
                "inserted",
                position,
                f"event {position} ({self._name(oid)} version {version}) has no link in the chain: it was written"
                " into the store after the chain had passed its place",
            )
        )

    def _gap(self, position: int, oid: str, previous: int | None, version: Any) -> None:
        if previous is None:
            message = f"{self._name(oid)} begins at version {version}: its earlier events were removed"
        else:
            message = (
                f"{self._name(oid)} goes from version {previous} to {version} at event {position}: the events"
                " between were removed"
            )
        raise Broken(Problem("deleted", position, message))

    def _altered(self, position: int, oid: str, version: Any) -> None:
        raise Broken(
            Problem(
                "chain",
                position,
                f"the chain's link for event {position} ({self._name(oid)} version {version}) was altered",
            )
        )

    def _prefetch(self, events: list[tuple[int, str, int, str, bytes]], last: dict[str, tuple[int, bytes]]) -> None:
        """Verifying from a seal: the links before it of the entities met for the first time, taken as stored."""
        first: dict[str, Any] = {}
        for _, oid, version, _, _ in events:
            if oid not in last:
                first.setdefault(oid, version)
        wanted = {oid: v - 1 for oid, v in first.items() if isinstance(v, int) and v > 1}
        if not wanted:
            return
        with self.db.transaction(write=False) as cur:
            found = previous_links(cur, list(wanted.items()))
        for (oid, version), link in found.items():
            last[oid] = (version, link)

    def _deleted(self, link: tuple[int, str, int, bytes, bytes]) -> None:
        position, oid, version = link[:3]
        removed = f"event {position} ({self._name(oid)} version {version}) was removed from the store"
        raise Broken(Problem("deleted", position, removed))

    def _changed(self, position: int, oid: str, version: Any, digest: bytes, chained: tuple[str, int]) -> None:
        elsewhere = self._chained_at(digest)
        if elsewhere is not None and elsewhere != position:
            raise Broken(
                Problem(
                    "reordered",
                    position,
                    f"event {position} holds what was recorded at event {elsewhere} ({self._name(oid)} version"
                    f" {version}): events were moved",
                )
            )
        raise Broken(
            Problem(
                "edited",
                position,
                f"event {position} ({self._name(chained[0])} version {chained[1]}) was changed after it was recorded",
            )
        )


def record(db: Database, v: Verification) -> None:
    """Keep the result, for `GET /api/audit/verify/`."""
    with db.transaction() as cur:
        row = cur.execute("SELECT coalesce(max(id), 0) AS n FROM audit_verifications").fetchone()
        number = int(row["n"]) + 1 if row else 1
        p = v.problem
        cur.execute(
            "INSERT INTO audit_verifications (id, started_at, finished_at, since, up_to, events, seals, unchained, ok,"
            " problem_kind, problem_position, problem) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                number,
                v.started_at,
                v.finished_at,
                v.since,
                v.up_to,
                v.events,
                v.seals,
                v.unchained,
                v.ok,
                p.kind if p else None,
                p.position if p else None,
                p.message if p else None,
            ),
        )
