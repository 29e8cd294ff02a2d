"""Event stores written by earlier versions of Cosmo (tests/fixtures/logs/, made by running each version and
driving it through its API; see the README there) replay through today's code on both backends: every projection
gets through the whole log, every aggregate loads (older events upcast as they are decoded), the audit chain
covers the log and verifies, and the API answers from what was rebuilt."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from litestar.testing import TestClient

from cosmo.api.app import create_app
from cosmo.projections.audit.chain import audit_key
from cosmo.projections.audit.verify import Verifier
from cosmo.runtime import Runtime
from cosmo.storage import snapshots
from tests.conftest import Backend

LOGS = sorted((Path(__file__).parents[1] / "fixtures" / "logs").glob("*.jsonl"))
ROOT_PASSWORD = "Sup3r-secret-1"  # the superuser each fixture's scenario created


def read_log(path: Path) -> tuple[dict[str, Any], list[StoredEvent]]:
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    events = []
    for line in lines[1:]:
        e = json.loads(line)
        events.append(
            StoredEvent(
                originator_id=UUID(e["originator_id"]),
                originator_version=e["originator_version"],
                topic=e["topic"],
                state=e["state"].encode(),
            )
        )
    return header, events


@pytest.fixture
def replayed(backend: Backend, request: pytest.FixtureRequest) -> Iterator[tuple[Runtime, list[StoredEvent]]]:
    _, events = read_log(request.param)
    rt = Runtime(backend.settings())
    rt.app.recorder.insert_events(events)
    yield rt, events
    rt.close()


def test_there_are_logs_from_earlier_versions() -> None:
    commits = [json.loads(p.read_text().splitlines()[0])["commit"] for p in LOGS]
    assert len(set(commits)) >= 5, commits


@pytest.mark.parametrize("replayed", LOGS, ids=[p.stem for p in LOGS], indirect=True)
def test_a_log_from_an_earlier_version_replays(replayed: tuple[Runtime, list[StoredEvent]], backend: Backend) -> None:
    rt, events = replayed
    assert rt.runner.head() == len(events)
    rt.runner.catch_up()
    failing = {s["name"]: s["error"] for s in rt.runner.status() if s["error"] is not None}
    assert not failing, failing
    assert all(s["lag"] == 0 for s in rt.runner.status())

    for originator in {e.originator_id for e in events}:
        aggregate = snapshots.load(rt.app, originator)  # every event decoded, upcast and applied
        assert aggregate.version == max(e.originator_version for e in events if e.originator_id == originator)

    verified = Verifier(rt.app, rt.db, audit_key(backend.settings().secret_key)).run()
    assert verified.ok and verified.events == len(events), verified.problem

    with TestClient(create_app(backend.settings(), runtime=rt)) as client:
        token = client.post("/api/token/", json={"username": "root", "password": ROOT_PASSWORD})
        assert token.status_code == 200, token.text
        h = {"Authorization": f"Bearer {token.json()['access']}"}
        for path in ("/api/users/", "/api/properties/", "/api/tasks/", "/api/audit/events/"):
            r = client.get(path, headers=h)
            assert r.status_code == 200, (path, r.text)
