"""No stored event may stall the read side.

A store written before the edge refused them holds values the databases cannot take as they are (NUL in text,
integers beyond 64 bits, dates whose UTC falls outside year 1..9999): projections write them escaped or clamped,
live and in a rebuild. A projection that still fails on an event is stopped at it, reported (CLI status, readiness)
and kept apart: the others go on, and writes it would not show are not answered 503.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from eventsourcing.utils import get_topic

from cosmo.cli import main
from cosmo.domain.checks import EARLIEST, LATEST
from cosmo.domain.identity import InviteCode, User
from cosmo.domain.properties import Property
from cosmo.domain.tasks import Task
from cosmo.projections import runner as runner_module
from cosmo.projections.tasks import TasksProjection
from tests.conftest import Api, Backend, make_api

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))
NUL = "a\x00b"
HUGE = 2**63


class _SyncIds:
    def __init__(self, api: Api):
        self._api = api

    def next(self, kind: str) -> int:
        return self._api.runtime.call(lambda: self._api.runtime.commands.tasks.ids.next(kind))


def _poison(api: Api, admin_id: int) -> dict[str, int]:
    """Write, straight to the event store (as an older version of Cosmo could have), one aggregate of each kind
    with every value the edge now refuses."""
    app = api.runtime.app
    ids = _SyncIds(api)
    user = User(
        user_id=ids.next("user"),
        username="poisoned",
        email="",
        password_hash="x",
        first_name=NUL,
        last_name=NUL,
        role="staff",
        task_group="cleaning",
        invite_code_id=None,
        actor_id=None,
    )
    invite = InviteCode(
        invite_id=ids.next("invite"),
        code="POISONED22",
        role="staff",
        task_group="cleaning",
        max_uses=HUGE,
        expires_at=datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14),
        notes=NUL,
        created_by=admin_id,
    )
    prop = Property(
        property_id=ids.next("property"),
        name="Poisoned",
        address=NUL,
        property_type="other",
        timezone="UTC",
        actor_id=HUGE,  # the audit view's actor column, among others
    )
    prop.add_unit(ids.next("unit"), NUL, None, admin_id)
    tasks = []
    for due in (
        datetime(1, 1, 1, tzinfo=PLUS_14),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14),
        datetime(1, 1, 1, tzinfo=UTC),
    ):
        item_id = ids.next("checklist-item")
        task = Task(
            task_id=ids.next("task"),
            title=NUL,
            description=NUL,
            task_type="cleaning",
            priority="high",
            property_id=HUGE,
            unit_id=None,
            assigned_to=HUGE,
            due_date=due,
            checklist={
                "template_id": None,
                "template_name": NUL,
                "items": [{"id": item_id, "text": NUL, "item_type": "check", "is_required": False, "room": NUL}],
            },
            actor_id=admin_id,
        )
        # The events themselves, past today's checks.
        task._notes_changed(NUL, admin_id)
        task._item_updated(item_id, {"notes": NUL, "value": NUL}, admin_id)
        tasks.append(task)
    recordings = app.save(user, invite, prop, *tasks)
    return {
        "position": recordings[-1].notification.id,
        "user": user.user_id,
        "invite": invite.invite_id,
        "property": prop.property_id,
        "first_task": tasks[0].task_id,
    }


def _all_at_head(api: Api) -> None:
    status = api.runtime.runner.status()
    head = api.runtime.runner.head()
    assert [(s["name"], s["position"], s["error"]) for s in status] == [(s["name"], head, None) for s in status]


def test_a_poisoned_log_projects_live_and_in_a_rebuild(backend: Backend) -> None:
    for api in make_api(backend):
        admin_id = api.make_user("admin", "superuser", "none")
        headers = api.auth("admin")
        poisoned = _poison(api, admin_id)
        api.runtime.settle(poisoned["position"])
        _all_at_head(api)
        for _ in range(2):
            tasks = api.get("/api/tasks/?ordering=due_date", headers=headers)
            assert tasks.status_code == 200, tasks.text
            dues = [t["due_date"] for t in tasks.json()["results"]]
            assert dues == [
                EARLIEST.isoformat().replace("+00:00", "Z"),
                EARLIEST.isoformat().replace("+00:00", "Z"),
                LATEST.isoformat().replace("+00:00", "Z"),
            ]
            assert {t["title"] for t in tasks.json()["results"]} == {"a\ufffdb"}
            detail = api.get(f"/api/tasks/{poisoned['first_task']}/", headers=headers)
            assert detail.status_code == 200, detail.text
            assert detail.json()["notes"] == "a\ufffdb"
            assert detail.json()["checklist"]["items"][0]["notes"] == "a\ufffdb"
            assert api.get("/api/staff/dashboard/", headers=headers).status_code == 200
            user = api.get(f"/api/users/{poisoned['user']}/", headers=headers).json()
            assert user["first_name"] == "a\ufffdb"
            invites = api.get("/api/admin/invite-codes/", headers=headers).json()["results"]
            assert invites[0]["max_uses"] == 2**63 - 1
            assert invites[0]["expires_at"] == LATEST.isoformat().replace("+00:00", "Z")
            prop = api.get(f"/api/properties/{poisoned['property']}/", headers=headers).json()
            assert prop["address"] == "a\ufffdb" and prop["units"][0]["unit_number"] == "a\ufffdb"
            # The same from a rebuild of every projection.
            for name in api.runtime.projection_names:
                api.runtime.runner.rebuild(name)
            _all_at_head(api)
        # Editing and deleting the task that could not be read before works.
        r = api.patch(f"/api/tasks/{poisoned['first_task']}/", json={"title": "Fixed"}, headers=headers)
        assert r.status_code == 200 and r.json()["title"] == "Fixed"
        assert api.delete(f"/api/tasks/{poisoned['first_task']}/", headers=headers).status_code == 204


@pytest.fixture(params=["python", "database"])
def broken_notes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """The tasks projection fails on notes "boom": by raising in Python, or by a statement the database refuses
    (on PostgreSQL that error only surfaces when the pipelined batch is flushed)."""
    original = TasksProjection.notes_changed

    def notes_changed(self, cur, e, t) -> None:
        if e.notes == "boom":
            if request.param == "python":
                raise RuntimeError("cannot project this")
            cur.execute("INSERT INTO no_such_table (x) VALUES (%s)", (1,))
        original(self, cur, e, t)

    notes_changed.__cosmo_handles__ = original.__cosmo_handles__  # type: ignore[attr-defined]
    monkeypatch.setattr(TasksProjection, "notes_changed", notes_changed)
    monkeypatch.setattr(runner_module, "RETRY_FAILING", 3600.0)
    return original


def test_a_failing_projection_is_reported_and_kept_apart(backend: Backend, broken_notes, monkeypatch) -> None:
    for api in make_api(backend):
        api.make_user("admin", "superuser", "none")
        headers = api.auth("admin")
        task = api.post("/api/tasks/", json={"title": "Clean", "task_type": "cleaning"}, headers=headers).json()
        # The write is stored, but the projection that would show it cannot: 503, and the others still move on.
        stuck = api.patch(f"/api/tasks/{task['id']}/", json={"notes": "boom"}, headers=headers)
        assert stuck.status_code == 503 and stuck.headers["Retry-After"] == "1"
        failed_at = api.runtime.runner.head()
        # Writes the failing projection would not show are answered at once, and readable.
        me = api.patch("/api/users/me/", json={"first_name": "Ada"}, headers=headers)
        assert me.status_code == 200 and me.json()["first_name"] == "Ada"
        positions = {s["name"]: s for s in api.runtime.runner.status()}
        assert positions["tasks"]["position"] == failed_at - 1
        assert positions["tasks"]["error_position"] == failed_at
        assert all(s["position"] == api.runtime.runner.head() for n, s in positions.items() if n != "tasks")
        # A write the failing projection would show is 503 at once (no 2 s wait for a projection that is stopped).
        other = api.patch(f"/api/tasks/{task['id']}/", json={"priority": "high"}, headers=headers)
        assert other.status_code == 503
        assert api.get(f"/api/tasks/{task['id']}/", headers=headers).json()["notes"] == ""
        ready = api.get("/api/health/ready/")
        assert ready.status_code == 503
        tasks_check = ready.json()["checks"]["projections"]["tasks"]
        assert tasks_check["failing"] is True and tasks_check["stopped_at_event"] == failed_at
        assert "boom" not in ready.text and "no_such_table" not in ready.text
        status = CliRunner().invoke(main, ["projections", "status"], env=backend.env)
        assert status.exit_code == 1
        line = next(x for x in status.output.splitlines() if x.startswith("tasks "))
        assert f"FAILING at event {failed_at}" in line
        assert "notifications" in status.output and "ok" in status.output
        # Fixed (here: the handler restored) and retried: it gets past the event and the failure is cleared.
        api.runtime.runner.projections["tasks"]._handlers[get_topic(Task.NotesChanged)] = broken_notes
        monkeypatch.setattr(runner_module, "RETRY_FAILING", 0.0)
        deadline = time.monotonic() + 10
        while api.runtime.board.failing and time.monotonic() < deadline:
            api.runtime.runner.kick()
            time.sleep(0.05)
        api.runtime.settle(api.runtime.runner.head())
        assert api.get("/api/health/ready/").status_code == 200
        detail = api.get(f"/api/tasks/{task['id']}/", headers=headers).json()
        assert detail["notes"] == "boom" and detail["priority"] == "high"
        assert all(s["error"] is None for s in api.runtime.runner.status())
