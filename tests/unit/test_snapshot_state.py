"""What a snapshot keeps: state in shapes JSON would change (int keys, sets, tuples) comes back as it went in, and
the inbox's state stays bounded however many notifications are read."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder

from cosmo.domain.inbox import READ_KEPT, Inbox
from cosmo.storage.library import CosmoApp
from cosmo.storage.snapshots import CosmoSnapshot, StaleSnapshot, pack, unpack


def test_packed_state_survives_json() -> None:
    transcoder = JSONTranscoder()
    CosmoApp.register_transcodings(CosmoApp, transcoder)  # type: ignore[arg-type]
    state = {
        "units": {3: {"unit_number": "101", "tags": {"a", "b"}}},
        "pair": (1, "x"),
        "nested": [{7: (1, 2)}],
        "id": uuid4(),
        "money": Decimal("10.50"),
        "when": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        "empty": {},
        "frozen": {frozenset({1, 2}): frozenset({(1, 2)})},
    }
    assert unpack(transcoder.decode(transcoder.encode(pack(state)))) == state


def test_an_inbox_keeps_a_bounded_state() -> None:
    inbox = Inbox(user_id=1)
    for n in range(1, 2000):
        inbox.mark_read(n)
    assert len(inbox.read) == READ_KEPT and inbox.is_read(1999) and not inbox.is_read(1)
    before = len(inbox.pending_events)
    inbox.mark_read(1999)  # a recent one: nothing to record
    assert len(inbox.pending_events) == before


def test_a_snapshot_refuses_to_load_under_other_code() -> None:
    inbox = Inbox(user_id=1)
    inbox.mark_read(5)
    snapshot = CosmoSnapshot.take(inbox)
    assert vars(snapshot.mutate(None)) == {**vars(inbox), "_pending_events": []}
    forged = CosmoSnapshot.take(inbox)
    forged.state["cosmo_class_fingerprint"] = "not-this-code"
    with pytest.raises(StaleSnapshot):
        forged.mutate(None)


def test_an_unreadable_snapshot_is_stale_not_fatal() -> None:
    inbox = Inbox(user_id=1)
    broken = CosmoSnapshot.take(inbox)
    broken.state["cosmo_state"] = {"__cosmo_items__": "not a list of pairs"}
    with pytest.raises(StaleSnapshot):
        broken.mutate(None)
