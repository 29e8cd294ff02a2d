"""Tasks, checklists and the staff endpoints: the working day end to end, who sees and may do what, the status
machine, claiming races, filters and ordering."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cosmo.domain.actors import Actor
from cosmo.domain.errors import Conflict
from cosmo.domain.ids import aggregate_id
from tests.conftest import Api, Backend, make_api


@pytest.fixture
def team(api: Api, admin: dict[str, str]) -> dict[str, dict]:
    """Users by name -> {"id", "h" (auth headers)}."""
    people = {
        "boss": ("manager", "none"),
        "cleo": ("staff", "cleaning"),
        "carl": ("staff", "cleaning"),
        "mark": ("staff", "maintenance"),
        "gina": ("staff", "general"),
        "nora": ("staff", "none"),
        "vic": ("viewer", "none"),
        "audrey": ("auditor", "none"),
    }
    out = {"admin": {"id": None, "h": admin}}
    for name, (role, group) in people.items():
        uid = api.make_user(name, role, group)
        out[name] = {"id": uid, "h": api.auth(name)}
    return out


def _post(api: Api, path: str, body: dict, headers: dict, status: int = 201) -> dict:
    r = api.post(path, json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def _task(api: Api, team: dict, **body) -> dict:
    return _post(api, "/api/tasks/", {"title": "Clean 101", "task_type": "cleaning", **body}, team["boss"]["h"])


ITEMS = [
    {"text": "Vacuum carpet", "is_required": True, "room": "Living room"},
    {"text": "Towels counted", "item_type": "number_input", "is_required": True},
    {"text": "Anything odd?", "item_type": "text_input"},
]


def test_a_working_day(api: Api, team) -> None:
    boss, cleo = team["boss"]["h"], team["cleo"]["h"]
    prop = _post(api, "/api/properties/", {"name": "Main Building", "property_type": "apartment"}, boss)
    unit = _post(api, f"/api/properties/{prop['id']}/units/", {"unit_number": "101"}, boss)
    template = _post(
        api,
        "/api/checklist-templates/",
        {"name": "Standard Cleaning", "task_type": "cleaning", "is_default": True, "items": ITEMS},
        boss,
    )
    assert template["is_default"] and [i["text"] for i in template["items"]] == [i["text"] for i in ITEMS]
    assert api.get(f"/api/checklist-templates/{template['id']}/", headers=cleo).json() == template
    task = _task(
        api,
        team,
        property=prop["id"],
        unit=unit["id"],
        assigned_to=team["cleo"]["id"],
        due_date="2030-09-15T10:00:00Z",
        priority="high",
    )
    assert task["checklist_template"] == "Standard Cleaning"
    assert task["checklist_progress"] == {"percentage": 0, "completed": 0, "total": 3, "remaining": 3}
    assert (task["property_name"], task["unit_number"], task["assigned_to_username"]) == (
        "Main Building",
        "101",
        "cleo",
    )

    listed = api.get("/api/staff/tasks/", headers=cleo).json()
    assert [t["id"] for t in listed["results"]] == [task["id"]]
    detail = api.get(f"/api/staff/tasks/{task['id']}/", headers=cleo).json()
    items = detail["checklist"]["items"]
    assert [i["completed"] for i in items] == [False, False, False] and detail["images"] == []

    base = f"/api/staff/tasks/{task['id']}"
    r = api.patch(f"{base}/", json={"status": "in-progress", "notes": "Started"}, headers=cleo)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id", "status", "notes", "updated_at"} and r.json()["status"] == "in-progress"
    seen = api.get(f"{base}/", headers=cleo).json()
    assert (seen["status"], seen["notes"], seen["updated_at"]) == ("in-progress", "Started", r.json()["updated_at"])

    r = api.patch(f"{base}/checklist/{items[0]['id']}/", json={"completed": True}, headers=cleo)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["completed"] and body["completed_by"] == team["cleo"]["id"] and body["completed_at"]
    assert body["progress"] == {"percentage": 33, "completed": 1, "total": 3, "remaining": 2}

    # The number item is still open: completing is refused, naming it.
    r = api.patch(f"{base}/", json={"status": "completed"}, headers=cleo)
    assert r.status_code == 400
    missing = r.json()["details"]["checklist"]
    assert len(missing) == 1 and "Towels counted" in missing[0]

    bad = api.patch(f"{base}/checklist/{items[1]['id']}/", json={"value": "lots", "completed": True}, headers=cleo)
    assert bad.status_code == 400 and "value" in bad.json()["details"]
    r = api.patch(f"{base}/checklist/{items[1]['id']}/", json={"value": 12, "completed": True}, headers=cleo)
    assert r.json()["value"] == "12"
    assert api.get(f"{base}/progress/", headers=cleo).json() == {
        "percentage": 67,
        "completed": 2,
        "total": 3,
        "remaining": 1,
    }

    r = api.patch(f"{base}/", json={"status": "completed"}, headers=cleo)
    assert r.status_code == 200 and r.json()["status"] == "completed"
    # Done is done for staff: no more checklist changes, no reopening.
    assert api.patch(f"{base}/checklist/{items[2]['id']}/", json={"value": "ok"}, headers=cleo).status_code == 400
    assert api.patch(f"{base}/", json={"status": "in-progress"}, headers=cleo).status_code == 403
    assert api.patch(f"{base}/", json={"status": "in-progress"}, headers=boss).status_code == 200


def test_checklists_are_copied_when_the_task_is_made(api: Api, team) -> None:
    boss = team["boss"]["h"]
    first = _post(
        api,
        "/api/checklist-templates/",
        {"name": "Basic", "task_type": "cleaning", "is_default": True, "items": ITEMS[:1]},
        boss,
    )
    task = _task(api, team)
    assert task["checklist_template"] == "Basic"
    # Editing or deleting the template leaves the task's checklist alone.
    r = api.patch(f"/api/checklist-templates/{first['id']}/", json={"items": ITEMS, "name": "Better"}, headers=boss)
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert api.delete(f"/api/checklist-templates/{first['id']}/", headers=boss).status_code == 204
    detail = api.get(f"/api/tasks/{task['id']}/", headers=boss).json()
    assert detail["checklist"]["template"] == "Basic" and len(detail["checklist"]["items"]) == 1
    # With no default left, a new cleaning task has no checklist.
    bare = _task(api, team, title="No list")
    assert bare["checklist_id"] is None and bare["checklist_progress"]["total"] == 0
    r = api.post(
        "/api/tasks/", json={"title": "x", "task_type": "cleaning", "checklist_template": first["id"]}, headers=boss
    )
    assert r.status_code == 400 and "checklist_template" in r.json()["details"]


def test_one_default_template_per_task_type(api: Api, team) -> None:
    boss = team["boss"]["h"]
    a = _post(api, "/api/checklist-templates/", {"name": "A", "task_type": "cleaning", "is_default": True}, boss)
    b = _post(api, "/api/checklist-templates/", {"name": "B", "task_type": "cleaning", "is_default": True}, boss)
    listed = api.get("/api/checklist-templates/?task_type=cleaning", headers=boss).json()["results"]
    assert {t["name"]: t["is_default"] for t in listed} == {"A": False, "B": True}
    assert _task(api, team)["checklist_template"] == "B"
    # A named template wins over the default, whatever its type.
    named = _task(api, team, checklist_template=a["id"])
    assert named["checklist_template"] == "A"
    assert (
        api.patch(f"/api/checklist-templates/{b['id']}/", json={"is_default": False}, headers=boss).status_code == 200
    )
    assert _task(api, team)["checklist_template"] is None
    for role in ("cleo", "vic", "audrey"):
        h = team[role]["h"]
        assert api.get("/api/checklist-templates/", headers=h).status_code == 200
        r = api.post("/api/checklist-templates/", json={"name": "Mine", "task_type": "cleaning"}, headers=h)
        assert r.status_code == 403
        assert api.delete(f"/api/checklist-templates/{a['id']}/", headers=h).status_code == 403
    r = api.post(
        "/api/checklist-templates/",
        json={"name": "", "task_type": "gardening", "items": [{"text": "x", "item_type": "selfie"}]},
        headers=boss,
    )
    assert r.status_code == 400 and set(r.json()["details"]) == {"name", "task_type", "items"}


def test_who_sees_which_tasks(api: Api, team) -> None:
    mine = _task(api, team, title="Cleo's", assigned_to=team["cleo"]["id"])
    carls = _task(api, team, title="Carl's", assigned_to=team["carl"]["id"])
    open_cleaning = _task(api, team, title="Open cleaning")
    open_repair = _task(api, team, title="Open repair", task_type="maintenance")
    noras = _task(api, team, title="Nora's", task_type="laundry", assigned_to=team["nora"]["id"])

    def seen(name: str) -> set[str]:
        r = api.get("/api/staff/tasks/?page_size=100", headers=team[name]["h"])
        assert r.status_code == 200
        return {t["title"] for t in r.json()["results"]}

    everything = {"Cleo's", "Carl's", "Open cleaning", "Open repair", "Nora's"}
    # The manager list applies the same rule as the staff list.
    for name in ("cleo", "boss"):
        listed = api.get("/api/tasks/?page_size=100", headers=team[name]["h"]).json()
        assert {t["title"] for t in listed["results"]} == seen(name) and listed["count"] == len(seen(name))
    assert seen("cleo") == {"Cleo's", "Open cleaning"}
    assert seen("mark") == {"Open repair"}
    assert seen("gina") == {"Open cleaning", "Open repair"}
    assert seen("nora") == {"Nora's"}
    for name in ("boss", "admin", "vic", "audrey"):
        assert seen(name) == everything
    # Out of sight is not found, on every task endpoint.
    cleo = team["cleo"]["h"]
    for path in (
        f"/api/staff/tasks/{carls['id']}/",
        f"/api/tasks/{open_repair['id']}/",
        f"/api/staff/tasks/{noras['id']}/progress/",
    ):
        assert api.get(path, headers=cleo).status_code == 404
    assert (
        api.patch(f"/api/staff/tasks/{carls['id']}/", json={"status": "in-progress"}, headers=cleo).status_code == 404
    )
    item_path = f"/api/staff/tasks/{carls['id']}/checklist/1/"
    assert api.patch(item_path, json={"completed": True}, headers=cleo).status_code == 404
    assert api.get(f"/api/staff/tasks/{mine['id']}/", headers=cleo).status_code == 200
    assert api.get(f"/api/staff/tasks/{open_cleaning['id']}/", headers=cleo).status_code == 200


def test_what_each_role_may_change(api: Api, team) -> None:
    task = _task(api, team, assigned_to=team["cleo"]["id"])
    unassigned = _task(api, team, title="Open")
    tid = task["id"]
    for name in ("cleo", "vic", "audrey"):
        h = team[name]["h"]
        assert api.post("/api/tasks/", json={"title": "x", "task_type": "cleaning"}, headers=h).status_code == 403
        assert api.patch(f"/api/tasks/{tid}/", json={"title": "Renamed"}, headers=h).status_code == 403
        assert api.delete(f"/api/tasks/{tid}/", headers=h).status_code == 403
        assert api.post(f"/api/tasks/{tid}/assign/", json={"user": team["carl"]["id"]}, headers=h).status_code == 403
    for name in ("vic", "audrey"):
        h = team[name]["h"]
        assert api.patch(f"/api/staff/tasks/{tid}/", json={"status": "in-progress"}, headers=h).status_code == 403
        assert api.post(f"/api/tasks/{unassigned['id']}/claim/", headers=h).status_code == 403
    # Staff may not work a task that is not theirs, even one they can see.
    r = api.patch(f"/api/staff/tasks/{unassigned['id']}/", json={"status": "in-progress"}, headers=team["cleo"]["h"])
    assert r.status_code == 403 and r.json() == {"error": "Permission denied"}
    # Managers may do everything; the assignee may not cancel.
    assert (
        api.patch(f"/api/staff/tasks/{tid}/", json={"status": "canceled"}, headers=team["cleo"]["h"]).status_code == 403
    )
    assert (
        api.patch(f"/api/staff/tasks/{tid}/", json={"status": "canceled"}, headers=team["boss"]["h"]).status_code == 200
    )
    r = api.patch(f"/api/tasks/{tid}/", json={"status": "in-progress"}, headers=team["boss"]["h"])
    assert r.status_code == 400 and "canceled" in r.json()["details"]["status"][0]
    assert api.delete(f"/api/tasks/{tid}/", headers=team["admin"]["h"]).status_code == 204
    assert api.get(f"/api/tasks/{tid}/", headers=team["boss"]["h"]).status_code == 404


def test_status_machine(api: Api, team) -> None:
    cleo = team["cleo"]["h"]
    tid = _task(api, team, assigned_to=team["cleo"]["id"])["id"]
    path = f"/api/staff/tasks/{tid}/"
    r = api.patch(path, json={"status": "completed"}, headers=cleo)
    assert r.status_code == 400 and "pending to completed" in r.json()["details"]["status"][0]
    assert api.patch(path, json={"status": "done"}, headers=cleo).status_code == 400
    assert api.patch(path, json={}, headers=cleo).status_code == 400
    for status in ("in-progress", "pending", "in-progress", "completed"):
        r = api.patch(path, json={"status": status}, headers=cleo)
        assert r.status_code == 200 and r.json()["status"] == status


def test_assign_and_claim(api: Api, team) -> None:
    boss = team["boss"]["h"]
    tid = _task(api, team)["id"]
    r = api.post(f"/api/tasks/{tid}/assign/", json={"user": team["vic"]["id"]}, headers=boss)
    assert r.status_code == 400 and "user" in r.json()["details"]
    assert api.post(f"/api/tasks/{tid}/assign/", json={"user": 9999}, headers=boss).status_code == 400
    # Staff of another group cannot even see it; a cleaner claims it; a second claim is a conflict.
    assert api.post(f"/api/tasks/{tid}/claim/", headers=team["mark"]["h"]).status_code == 404
    r = api.post(f"/api/tasks/{tid}/claim/", headers=team["cleo"]["h"])
    assert r.status_code == 200 and r.json()["assigned_to"] == team["cleo"]["id"]
    # Someone of the group who comes second is told it was taken (409), not that it does not exist.
    taken = api.post(f"/api/tasks/{tid}/claim/", headers=team["gina"]["h"])
    assert taken.status_code == 409 and taken.json() == {
        "error": "Conflict",
        "detail": "This task has already been taken.",
    }
    r = api.post(f"/api/tasks/{tid}/assign/", json={"user": team["carl"]["id"]}, headers=boss)
    assert r.json()["assigned_to_username"] == "carl"
    assert api.get(f"/api/staff/tasks/{tid}/", headers=team["cleo"]["h"]).status_code == 404
    r = api.post(f"/api/tasks/{tid}/assign/", json={"user": None}, headers=boss)
    assert r.json()["assigned_to"] is None
    r = api.post(f"/api/tasks/{tid}/claim/", headers=team["gina"]["h"])
    assert r.status_code == 200
    r = api.post(f"/api/tasks/{tid}/claim/", headers=team["boss"]["h"])
    assert r.status_code == 403


def test_two_claims_at_once_one_wins(api: Api, team) -> None:
    tid = _task(api, team)["id"]
    commands = api.runtime.commands.tasks
    start = threading.Barrier(2)

    def claim(name: str) -> str:
        start.wait()
        try:
            api.runtime.command(lambda: commands.claim(Actor(team[name]["id"], "staff", "cleaning"), tid))
        except Conflict:
            return "conflict"
        return "won"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(claim, ["cleo", "carl"]))
    assert sorted(outcomes) == ["conflict", "won"]


def test_task_validation(api: Api, team) -> None:
    boss = team["boss"]["h"]
    prop = _post(api, "/api/properties/", {"name": "P"}, boss)
    other = _post(api, "/api/properties/", {"name": "Q"}, boss)
    unit = _post(api, f"/api/properties/{other['id']}/units/", {"unit_number": "1"}, boss)
    cases = [
        ({"title": "", "task_type": "cleaning"}, "title"),
        ({"title": "x", "task_type": "gardening"}, "task_type"),
        ({"title": "x", "task_type": "cleaning", "priority": "asap"}, "priority"),
        ({"title": "x", "task_type": "cleaning", "property": 999}, "property"),
        ({"title": "x", "task_type": "cleaning", "property": prop["id"], "unit": unit["id"]}, "unit"),
        ({"title": "x", "task_type": "cleaning", "assigned_to": team["audrey"]["id"]}, "assigned_to"),
    ]
    for body, field in cases:
        r = api.post("/api/tasks/", json=body, headers=boss)
        assert r.status_code == 400 and field in r.json()["details"], (body, r.text)
    assert (
        api.post(
            "/api/tasks/", json={"title": "x", "task_type": "cleaning", "due_date": "soon"}, headers=boss
        ).status_code
        == 400
    )
    assert (
        api.post("/api/tasks/", json={"title": "x", "task_type": "cleaning", "colour": "red"}, headers=boss).status_code
        == 400
    )


def test_filters_and_ordering(api: Api, team) -> None:
    boss = team["boss"]["h"]
    prop = _post(api, "/api/properties/", {"name": "P"}, boss)
    _task(api, team, title="Low soon", priority="low", due_date="2030-01-01T00:00:00Z", property=prop["id"])
    _task(api, team, title="Urgent later", priority="urgent", due_date="2030-06-01T00:00:00Z")
    _task(api, team, title="Fix boiler", task_type="maintenance", assigned_to=team["mark"]["id"], priority="high")

    def titles(query: str) -> list[str]:
        r = api.get(f"/api/staff/tasks/?{query}", headers=boss)
        assert r.status_code == 200, r.text
        return [t["title"] for t in r.json()["results"]]

    assert titles("ordering=-priority") == ["Urgent later", "Fix boiler", "Low soon"]
    assert titles("ordering=title") == ["Fix boiler", "Low soon", "Urgent later"]
    assert titles("task_type=maintenance") == ["Fix boiler"]
    assert titles(f"assigned_to={team['mark']['id']}") == ["Fix boiler"]
    assert titles(f"property={prop['id']}") == ["Low soon"]
    assert titles("priority=urgent") == ["Urgent later"]
    assert titles("due_before=2030-03-01&ordering=title") == ["Low soon"]
    assert titles("due_after=2030-03-01T00:00:00Z") == ["Urgent later"]
    assert titles("search=BOILER") == ["Fix boiler"]
    assert titles("status=pending&ordering=created_at") == ["Low soon", "Urgent later", "Fix boiler"]
    for bad in ("status=done", "task_type=x", "assigned_to=me", "due_before=someday", "ordering=colour"):
        r = api.get(f"/api/staff/tasks/?{bad}", headers=boss)
        assert r.status_code == 400, bad
        assert r.json()["error"] == "Validation failed"


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # only PostgreSQL runs several API processes
def test_a_process_with_a_stale_copy_decides_on_the_current_task(backend: Backend) -> None:
    """Each API process keeps the tasks it saved; another process's writes must still count. A change decided on a
    stale copy is decided again on the stored task, whether the copy refused it or its save clashed."""
    first, second = make_api(backend), make_api(backend)
    a, b = next(first), next(second)
    try:
        a.make_user("boss", "manager", "none")
        cleo = a.make_user("cleo", "staff", "cleaning")
        boss_a, cleo_a, cleo_b = a.auth("boss"), a.auth("cleo"), b.auth("cleo")
        tid = _post(a, "/api/tasks/", {"title": "T", "task_type": "cleaning", "assigned_to": cleo}, boss_a)["id"]
        path = f"/api/staff/tasks/{tid}/"

        def work(api: Api, headers: dict, **body) -> dict:
            r = api.patch(path, json=body, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        assert work(a, cleo_a, status="in-progress")["status"] == "in-progress"  # `a` now holds the task
        assert work(b, cleo_b, status="completed")["status"] == "completed"
        # Reopening is only valid from `completed`, which `a`'s copy does not know: it must not answer 400.
        assert work(a, boss_a, status="in-progress")["status"] == "in-progress"
        work(b, cleo_b, notes="from b")
        # A change its stale copy would allow: the save clashes on the version, and is decided again.
        reply = work(a, cleo_a, status="pending")
        assert reply["status"] == "pending" and reply["notes"] == "from b"
        for api, headers in ((a, cleo_a), (b, cleo_b)):
            task = api.get(path, headers=headers).json()
            assert (task["status"], task["notes"]) == ("pending", "from b")
        # Each change was recorded from the state it really changed (the creator is told of the others' changes).
        history = [n["message"] for n in a.get("/api/notifications/", headers=boss_a).json()["results"]]
        assert history == ["T: in-progress -> pending", "T: in-progress -> completed", "T: pending -> in-progress"]
    finally:
        for gen in (first, second):
            next(gen, None)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_write_made_while_a_change_is_decided_is_a_conflict(runtime) -> None:
    """The cache never turns a lost race into a silent overwrite: if the clashing write was made after the request
    started, the edit is refused (409), from a cached copy as from a fresh one."""
    from cosmo.commands.tasks import live_task
    from cosmo.storage.event_store import PostgresEventStore

    boss = Actor(1, "manager", "none")
    tid = runtime.command(lambda: runtime.commands.tasks.create(boss, {"title": "T", "task_type": "cleaning"}))
    runtime.command(lambda: runtime.commands.tasks.work(boss, tid, "in-progress", None))  # the store now holds the task

    async def scenario() -> list[str]:
        other = PostgresEventStore(runtime.app, runtime.settings.database.conninfo())  # another process's
        await other.open()
        try:
            outcomes = []

            async def decide(s) -> None:
                task = await live_task(s, tid, boss)
                theirs, _ = await other.get(task.id, fresh=True)  # their edit lands while this one is decided
                theirs.update({"title": f"Renamed at v{theirs.version}"}, boss.id, boss.role)
                await other.save(theirs)
                task.set_notes("mine", boss.id, boss.role)

            for _ in range(2):  # from the cached copy, then from a fresh load
                try:
                    await runtime.commands.tasks.execute(decide, retry=False)
                    outcomes.append("saved")
                except Conflict:
                    outcomes.append("conflict")
            return outcomes
        finally:
            await other.close()

    assert runtime.call(scenario) == ["conflict", "conflict"]
    task = runtime.app.repository.get(aggregate_id("task", tid))
    assert task.notes == "" and task.title.startswith("Renamed")
