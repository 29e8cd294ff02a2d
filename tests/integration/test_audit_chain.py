"""The audit chain, on both backends: every event is chained as it is projected, `cosmo audit verify` passes an
untouched store and reports the first broken link of each kind of tampering, done here to the database directly
as an intruder with database access would: an edited event, a deleted one, a reordered pair, a forged seal."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from cosmo.cli import main
from cosmo.domain.actors import SYSTEM
from cosmo.projections.audit import chain
from cosmo.projections.audit.chain import ZERO, audit_key, fold, key_id, link_of
from cosmo.projections.audit.verify import Verification, Verifier
from cosmo.runtime import Runtime
from cosmo.storage.db import Database
from tests.conftest import Backend

PASSWORD = "Pass-word-1"


@pytest.fixture
def rt(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setattr(chain, "SEAL_EVERY", 4)  # several seals from a few batches
    runtime = Runtime(backend.settings())
    runtime.start()
    yield runtime
    runtime.close()


def work(rt: Runtime, users: int = 4) -> list[int]:
    """Some history, saved in several batches: users created and their roles changed."""
    ids = []
    for i in range(users):
        uid = rt.command(
            lambda i=i: rt.commands.identity.create_user(
                SYSTEM,
                username=f"u{i}",
                email=f"u{i}@example.com",
                password=PASSWORD,
                role="staff",
                task_group="general",
            )
        )
        ids.append(uid)
    for uid in ids:
        rt.command(lambda uid=uid: rt.commands.identity.change_access(SYSTEM, uid, {"role": "viewer"}))
    rt.settle(rt.runner.head())
    return ids


def verify(rt: Runtime, since: int = 0) -> Verification:
    return Verifier(rt.app, rt.db, audit_key(rt.settings.secret_key)).run(since)


class Store:
    """The event table as an intruder sees it."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        recorder: Any = rt.app.recorder
        if rt.db.is_postgres:
            self.table = f"{recorder.datastore.schema}.{recorder.events_table_name}"
            self.id = "notification_id"
        else:
            self.table, self.id = recorder.events_table_name, "rowid"

    def row(self, position: int) -> dict[str, Any]:
        found = self.rt.db.fetchone(
            f"SELECT originator_id, originator_version, topic, state FROM {self.table} WHERE {self.id} = %s",
            (position,),
        )
        assert found is not None
        return dict(found)

    def positions(self, topic_part: str) -> list[int]:
        rows = self.rt.db.fetchall(f"SELECT {self.id} AS p, topic FROM {self.table} ORDER BY {self.id}")
        return [int(r["p"]) for r in rows if topic_part in r["topic"]]

    def set_state(self, position: int, state: bytes) -> None:
        self.rt.db.execute(f"UPDATE {self.table} SET state = %s WHERE {self.id} = %s", (state, position))

    def delete(self, position: int) -> None:
        self.rt.db.execute(f"DELETE FROM {self.table} WHERE {self.id} = %s", (position,))

    def swap(self, a: int, b: int) -> None:
        """Two events exchange places in the log (the (originator, version) key moves with its row's content)."""
        first, second = self.row(a), self.row(b)
        with self.rt.db.transaction() as cur:
            for position, content in ((a, None), (b, first), (a, second)):
                if content is None:  # park a's key out of the way of the unique constraint
                    cur.execute(f"UPDATE {self.table} SET originator_version = -1 WHERE {self.id} = %s", (position,))
                    continue
                cur.execute(
                    f"UPDATE {self.table} SET originator_id = %s, originator_version = %s, topic = %s, state = %s"
                    f" WHERE {self.id} = %s",
                    (
                        content["originator_id"],
                        content["originator_version"],
                        content["topic"],
                        content["state"],
                        position,
                    ),
                )


def test_the_chain_covers_every_event_and_an_untouched_store_verifies(rt: Runtime) -> None:
    work(rt)
    head = rt.runner.head()
    result = verify(rt)
    assert result.ok, result.problem
    assert (result.events, result.up_to, result.unchained) == (head, head, 0)
    seals = rt.db.fetchall("SELECT seq, up_to FROM audit_seals ORDER BY seq")
    assert len(seals) >= 2 and result.seals == len(seals)
    assert seals[-1]["up_to"] <= head


def test_an_edited_event_is_caught(rt: Runtime) -> None:
    work(rt)
    store = Store(rt)
    target = store.positions("User.AccessChanged")[1]
    original = bytes(store.row(target)["state"])
    assert b"viewer" in original
    store.set_state(target, original.replace(b"viewer", b"auditor"))
    result = verify(rt)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.position) == ("edited", target)
    assert "changed after it was recorded" in result.problem.message
    store.set_state(target, original)  # put back: the store verifies again
    assert verify(rt).ok


def test_a_deleted_event_is_caught(rt: Runtime) -> None:
    work(rt)
    store = Store(rt)
    target = store.positions("User.AccessChanged")[0]
    store.delete(target)
    result = verify(rt)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.position) == ("deleted", target)
    assert "was removed" in result.problem.message


def test_a_deleted_event_and_its_link_are_caught(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The intruder removes the chain's link too: the entity's versions skip one."""
    monkeypatch.setattr(chain, "SEAL_EVERY", 1000)  # no seal at the event removed: the versions give it away
    work(rt)
    store = Store(rt)
    sealed = {int(r["up_to"]) for r in rt.db.fetchall("SELECT up_to FROM audit_seals")}
    created = next(p for p in store.positions("User.Registered") if p not in sealed)
    store.delete(created)
    rt.db.execute("DELETE FROM audit_chain WHERE position = %s", (created,))
    result = verify(rt)
    assert result.problem is not None and result.problem.kind == "deleted"
    assert "version" in result.problem.message


def test_a_reordered_pair_is_caught(rt: Runtime) -> None:
    work(rt)
    store = Store(rt)
    a, b = store.positions("User.AccessChanged")[:2]
    store.swap(a, b)
    result = verify(rt)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.position) == ("reordered", a)
    assert f"recorded at event {b}" in result.problem.message


def test_a_forged_seal_is_caught(rt: Runtime) -> None:
    """The intruder edits an event and recomputes every link, the running hash and every seal, consistently, but
    without the audit key: the seals' signatures give it away."""
    work(rt)
    store = Store(rt)
    target = store.positions("User.AccessChanged")[0]
    store.set_state(target, bytes(store.row(target)["state"]).replace(b"viewer", b"auditor"))
    links = rt.db.fetchall("SELECT position, originator_id, version FROM audit_chain ORDER BY position")
    seals = {int(s["up_to"]): int(s["seq"]) for s in rt.db.fetchall("SELECT seq, up_to FROM audit_seals")}
    wrong_key = hashlib.sha256(b"a guess").digest()
    last: dict[str, bytes] = {}
    running = ZERO
    for link in links:
        content = store.row(int(link["position"]))
        oid = link["originator_id"]
        digest = chain.digest_of(oid, int(link["version"]), content["topic"], bytes(content["state"]))
        hashed = last[oid] = link_of(last.get(oid, ZERO), int(link["position"]), digest)
        running = fold(running, hashed)
        rt.db.execute(
            "UPDATE audit_chain SET digest = %s, hash = %s WHERE position = %s", (digest, hashed, link["position"])
        )
        if int(link["position"]) in seals:
            seq = seals[int(link["position"])]
            forged = chain.sign(wrong_key, seq, int(link["position"]), running)
            rt.db.execute("UPDATE audit_seals SET running = %s, signature = %s WHERE seq = %s", (running, forged, seq))
    result = verify(rt)
    assert result.problem is not None
    assert result.problem.kind == "seal"
    assert "forged signature" in result.problem.message


def test_an_altered_seal_is_caught(rt: Runtime) -> None:
    work(rt)
    seq = int(rt.db.fetchone("SELECT min(seq) AS s FROM audit_seals")["s"])
    rt.db.execute("UPDATE audit_seals SET running = %s WHERE seq = %s", (b"\x01" * 32, seq))
    result = verify(rt)
    assert result.problem is not None and result.problem.kind == "seal"


def test_a_removed_seal_is_caught(rt: Runtime) -> None:
    work(rt)
    seqs = [int(r["seq"]) for r in rt.db.fetchall("SELECT seq FROM audit_seals ORDER BY seq")]
    assert len(seqs) >= 2
    rt.db.execute("DELETE FROM audit_seals WHERE seq = %s", (seqs[0],))
    result = verify(rt)
    assert result.problem is not None and result.problem.kind == "seal"
    assert f"seal #{seqs[0]} is missing" in result.problem.message


def test_verifying_since_a_seal_checks_only_what_follows(rt: Runtime) -> None:
    work(rt, users=6)
    store = Store(rt)
    seals = rt.db.fetchall("SELECT seq, up_to FROM audit_seals ORDER BY seq")
    middle = int(seals[len(seals) // 2]["up_to"])
    later = verify(rt, since=middle)
    assert later.ok, later.problem
    assert later.since == middle and 0 < later.events < rt.runner.head()
    early = store.positions("User.Registered")[0]
    assert early <= middle
    store.set_state(early, b"{}")
    assert verify(rt, since=middle).ok  # before where it started
    assert not verify(rt).ok
    after = next(p for p in store.positions("User.AccessChanged") if p > middle)
    original = bytes(store.row(after)["state"])
    store.set_state(after, original.replace(b"viewer", b"auditor"))
    found = verify(rt, since=middle).problem
    assert found is not None and (found.kind, found.position) == ("edited", after)


def test_a_rebuild_does_not_rechain_a_changed_store(rt: Runtime) -> None:
    work(rt)
    store = Store(rt)
    target = store.positions("User.AccessChanged")[0]
    store.set_state(target, b"{}")
    rt.runner.rebuild("audit_chain")
    found = verify(rt).problem
    assert found is not None and found.position == target


def test_seals_name_the_key_and_a_changed_key_fails_verification(rt: Runtime) -> None:
    work(rt)
    key = audit_key(rt.settings.secret_key)
    seal = rt.db.fetchone("SELECT * FROM audit_seals ORDER BY seq DESC LIMIT 1")
    assert seal["key_id"] == key_id(key)
    expected = hmac.new(
        key,
        b"cosmo seal\0"
        + int(seal["seq"]).to_bytes(8, "big")
        + int(seal["up_to"]).to_bytes(8, "big")
        + bytes(seal["running"]),
        hashlib.sha256,
    ).hexdigest()
    assert seal["signature"] == expected
    other = Verifier(rt.app, rt.db, audit_key("another secret that is long enough, 32+")).run()
    assert other.problem is not None and other.problem.kind == "seal" and "COSMO_AUDIT_KEY" in other.problem.message


def test_a_store_from_before_the_chain_gains_it_at_migrate(backend: Backend) -> None:
    rt = Runtime(backend.settings())
    rt.start()
    try:
        work(rt, users=2)
    finally:
        rt.close()
    # As a store written before the chain existed: events, no chain.
    db = Database(backend.settings().database)
    for table in ("audit_chain", "audit_chain_head", "audit_seals"):
        db.execute(f"DELETE FROM {table}")
    db.execute("UPDATE projection_state SET position = 0 WHERE name = 'audit_chain'")
    db.close()
    runner = CliRunner()
    done = runner.invoke(main, ["migrate"], env=backend.env)
    assert done.exit_code == 0, done.output
    assert "events chained" in done.output
    checked = runner.invoke(main, ["audit", "verify"], env=backend.env)
    assert checked.exit_code == 0, checked.output
    assert "the log matches its chain and seals" in checked.output


def test_removing_the_newest_seals_is_caught_against_a_seal_kept_elsewhere(rt: Runtime) -> None:
    """Without the key an intruder cannot sign a seal, but can remove the newest ones and recompute the chain after
    the rest: only a seal the auditor kept outside the store (`--expect`) tells that log from one never sealed."""
    work(rt)
    newest = rt.db.fetchone("SELECT seq, signature FROM audit_seals ORDER BY seq DESC LIMIT 1")
    anchor = (int(newest["seq"]), newest["signature"])
    verifier = Verifier(rt.app, rt.db, audit_key(rt.settings.secret_key))
    assert verifier.run(anchor=anchor).ok
    rt.db.execute("DELETE FROM audit_seals WHERE seq = %s", (anchor[0],))
    assert verifier.run().ok  # nothing in the store itself says a seal is missing at the end
    found = verifier.run(anchor=anchor).problem
    assert found is not None and found.kind == "seal" and f"seal #{anchor[0]} is gone" in found.message
