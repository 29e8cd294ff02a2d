"""The audit API (issue 13, first slice), on both backends: auditors and superusers only; a task's history from
creation to completion with what each version changed; the task as it was at a chosen instant; events by cursor
with filters; a time range exported as JSON Lines; and no secret anywhere in any of it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from cosmo.cli import main
from tests.conftest import PASSWORD, Api, Backend


def _people(api: Api, admin: dict) -> dict:
    ids = {
        "manny": api.make_user("manny", "manager", "none"),
        "stella": api.make_user("stella", "staff", "cleaning"),
        "audra": api.make_user("audra", "auditor", "none"),
    }
    return {"ids": ids, "h": {name: api.auth(name) for name in ids} | {"admin": admin}}


def _all_events(api: Api, headers: dict, **params: str) -> list[dict]:
    found, cursor = [], None
    while True:
        query = {"ordering": "oldest", "page_size": "2", **params}
        if cursor is not None:
            query["cursor"] = str(cursor)
        r = api.get("/api/audit/events/", params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        found += page["results"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_only_auditors_and_superusers_read_the_log(api: Api, admin) -> None:
    crew = _people(api, admin)
    for who in ("manny", "stella"):
        h = crew["h"][who]
        assert api.get("/api/audit/events/", headers=h).status_code == 403
        assert api.get("/api/audit/export/", headers=h).status_code == 403
        assert api.get(f"/api/audit/user/{crew['ids']['stella']}/history/", headers=h).status_code == 403
        as_of = f"/api/audit/user/{crew['ids']['stella']}/?as_of=2030-01-01T00:00:00Z"
        assert api.get(as_of, headers=h).status_code == 403
        assert api.get("/api/audit/nonsense/1/history/", headers=h).status_code == 403  # names are not told either
    assert api.get("/api/audit/events/").status_code == 401
    for who in ("audra", "admin"):
        assert api.get("/api/audit/events/", headers=crew["h"][who]).status_code == 200


def test_a_task_from_creation_to_completion(api: Api, admin) -> None:
    crew = _people(api, admin)
    h, stella = crew["h"], crew["ids"]["stella"]
    task = api.post("/api/tasks/", json={"title": "Clean 101", "task_type": "cleaning"}, headers=h["manny"]).json()
    api.patch(f"/api/tasks/{task['id']}/", json={"assigned_to": stella}, headers=h["manny"])
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    for status in ("in-progress", "completed"):
        r = api.patch(f"/api/staff/tasks/{task['id']}/", json={"status": status}, headers=h["stella"])
        assert r.status_code == 200, r.text

    events = _all_events(api, h["audra"], entity="task", entity_id=str(task["id"]))
    assert [e["type"] for e in events] == ["Task.Created", "Task.Assigned", "Task.StatusChanged", "Task.StatusChanged"]
    assert [e["version"] for e in events] == [1, 2, 3, 4]
    assert [e["actor"] for e in events] == [crew["ids"]["manny"]] * 2 + [stella] * 2
    assert events[0]["data"]["title"] == "Clean 101" and events[3]["data"]["status"] == "completed"
    assert all(e["entity"] == "task" and e["entity_id"] == str(task["id"]) for e in events)
    newest = api.get("/api/audit/events/", params={"entity": "task", "page_size": "1"}, headers=h["audra"]).json()
    assert newest["results"][0]["cursor"] == events[-1]["cursor"] and newest["next_cursor"] is not None
    since = _all_events(api, h["audra"], since=str(events[1]["cursor"]), entity="task")
    assert [e["cursor"] for e in since] == [e["cursor"] for e in events[2:]]
    by_type = _all_events(api, h["audra"], type="Task.StatusChanged", actor=str(stella))
    assert len(by_type) == 2

    history = api.get(f"/api/audit/task/{task['id']}/history/", headers=h["audra"]).json()
    assert [v["version"] for v in history["versions"]] == [1, 2, 3, 4]
    assert history["versions"][1]["changes"]["assigned_to"] == {"before": None, "after": stella}
    assert history["versions"][3]["changes"]["status"] == {"before": "in-progress", "after": "completed"}

    then = api.get(f"/api/audit/task/{task['id']}/", params={"as_of": between.isoformat()}, headers=h["audra"])
    assert then.status_code == 200, then.text
    body = then.json()
    assert (body["version"], body["state"]["status"], body["state"]["assigned_to"]) == (2, "pending", stella)
    now = api.get(f"/api/audit/task/{task['id']}/", params={"as_of": "2100-01-01T00:00:00Z"}, headers=h["audra"])
    assert now.json()["state"]["status"] == "completed" and now.json()["version"] == 4
    before = (datetime.fromisoformat(events[0]["timestamp"]) - timedelta(seconds=1)).isoformat()
    r = api.get(f"/api/audit/task/{task['id']}/", params={"as_of": before}, headers=h["audra"])
    assert r.status_code == 404
    assert api.get(f"/api/audit/task/{task['id'] + 999}/history/", headers=h["audra"]).status_code == 404
    assert api.get(f"/api/audit/nothing/{task['id']}/history/", headers=h["audra"]).status_code == 404


def test_export_streams_a_range_and_no_secret_appears(api: Api, admin) -> None:
    crew = _people(api, admin)
    h = crew["h"]
    start = datetime.now(UTC) - timedelta(seconds=1)
    invite = api.post(
        "/api/admin/create-invite-code/", json={"role": "staff", "task_group": "cleaning"}, headers=h["admin"]
    )
    assert invite.status_code == 201, invite.text
    code = invite.json()["code"]
    r = api.post(
        "/api/register/",
        json={
            "username": "newbie",
            "email": "newbie@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
            "invite_code": code,
        },
    )
    assert r.status_code == 201, r.text
    hook = api.post(
        "/api/webhooks/", json={"url": "https://93.184.216.34/hook", "is_active": False}, headers=h["admin"]
    )
    assert hook.status_code == 201, hook.text
    secret = hook.json()["secret"]
    api.post("/api/webhooks/1/rotate-secret/", headers=h["admin"])

    exported = api.get("/api/audit/export/", params={"after": start.isoformat()}, headers=h["audra"])
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert lines and all(datetime.fromisoformat(e["timestamp"]) >= start for e in lines)
    assert [e["cursor"] for e in lines] == sorted(e["cursor"] for e in lines)
    types = {e["type"] for e in lines}
    assert {"InviteCode.Created", "InviteCode.Used", "User.Registered", "Webhook.Registered"} <= types
    everything = api.get("/api/audit/export/", headers=h["audra"]).text
    everything += json.dumps(_all_events(api, h["audra"]))
    everything += api.get("/api/audit/user/1/history/", headers=h["audra"]).text
    everything += api.get("/api/audit/webhook/1/history/", headers=h["audra"]).text
    everything += api.get("/api/audit/webhook/1/?as_of=2100-01-01T00:00:00Z", headers=h["audra"]).text
    claimed = _all_events(api, h["audra"], type="UniqueKey.Claimed")
    invite_key = next(e for e in claimed if e["data"]["scope"] == "invite-code")
    key_path = f"/api/audit/unique_key/{invite_key['entity_id']}"
    everything += api.get(f"{key_path}/history/", headers=h["audra"]).text
    everything += api.get(f"{key_path}/?as_of=2100-01-01T00:00:00Z", headers=h["audra"]).text
    for secret_text in (secret, "whsec_", "scrypt$", code, code.lower()):
        assert secret_text not in everything, secret_text
    assert "[redacted]" in everything
    empty = api.get("/api/audit/export/", params={"after": "2100-01-01T00:00:00Z"}, headers=h["audra"])
    assert empty.status_code == 200 and empty.text == ""


def test_bad_parameters_are_400s(api: Api, admin) -> None:
    h = _people(api, admin)["h"]["audra"]
    for params in (
        {"entity": "spaceship"},
        {"ordering": "sideways"},
        {"cursor": "-1"},
        {"since": "abc"},
        {"actor": "9" * 30},
        {"after": "yesterday"},
        {"before": "0001-01-01T00:00:00Z"},
        {"page_size": "0"},
        {"entity_id": "x" * 500},
        {"type": "nul\x00"},
    ):
        r = api.get("/api/audit/events/", params=params, headers=h)
        assert r.status_code == 400, (params, r.text)
    assert api.get("/api/audit/task/1/", headers=h).status_code == 400  # as_of is required
    assert api.get("/api/audit/task/1/?as_of=someday", headers=h).status_code == 400
    assert api.get("/api/audit/task/" + "9" * 300 + "/history/", headers=h).status_code == 404
    backwards = {"after": "2030-01-02T00:00:00Z", "before": "2030-01-01T00:00:00Z"}
    refused = api.get("/api/audit/export/", params=backwards, headers=h)
    assert refused.status_code == 400 and "before" in refused.json()["details"], refused.text


def test_a_password_change_shows_as_a_change_without_its_value(api: Api, admin) -> None:
    crew = _people(api, admin)
    h, stella = crew["h"], crew["ids"]["stella"]
    new = "Another-horse-7"
    r = api.patch("/api/users/me/", json={"old_password": PASSWORD, "new_password": new}, headers=h["stella"])
    assert r.status_code == 200, r.text
    history = api.get(f"/api/audit/user/{stella}/history/", headers=h["audra"])
    assert history.status_code == 200 and "scrypt$" not in history.text
    last = history.json()["versions"][-1]
    assert last["type"] == "User.PasswordChanged"
    assert last["changes"]["password_hash"] == {"before": "[redacted]", "after": "[redacted]"}
    assert last["actor"] == stella


def test_events_carry_their_chain_link_and_verify_reports_the_chain(api: Api, admin, backend: Backend) -> None:
    crew = _people(api, admin)
    h = crew["h"]
    for who in ("manny", "stella"):
        assert api.get("/api/audit/verify/", headers=h[who]).status_code == 403
    assert api.get("/api/audit/verify/").status_code == 401
    rt = api.runtime
    rt.settle(rt.runner.head())  # the chain is a projection like the others: read-your-writes covers it
    events = _all_events(api, h["audra"])
    links = {
        int(r["position"]): bytes(r["hash"]).hex() for r in rt.db.fetchall("SELECT position, hash FROM audit_chain")
    }
    assert events and all(e["hash"] == links[e["cursor"]] for e in events)
    status = api.get("/api/audit/verify/", headers=h["audra"]).json()
    assert status["chained_up_to"] == rt.runner.head()
    assert status["last_verification"] is None
    seal = status["latest_seal"]
    assert seal["seq"] >= 1 and len(seal["running"]) == 64 and len(seal["signature"]) == 64

    result = CliRunner().invoke(main, ["audit", "verify"], env=backend.env)
    assert result.exit_code == 0, result.output
    checked = api.get("/api/audit/verify/", headers=h["admin"]).json()["last_verification"]
    assert checked["ok"] is True and checked["problem"] is None
    assert checked["events"] == rt.runner.head() and checked["unchained"] == 0


def test_a_task_as_of_a_minute_shows_its_checklist_then(api: Api, admin) -> None:
    crew = _people(api, admin)
    h, stella = crew["h"], crew["ids"]["stella"]
    items = [{"text": "Towels"}, {"text": "Beds"}, {"text": "Count cups", "item_type": "number_input"}]
    template = api.post(
        "/api/checklist-templates/", json={"name": "Std", "task_type": "cleaning", "items": items}, headers=h["manny"]
    ).json()
    body = {"title": "Clean 7", "task_type": "cleaning", "assigned_to": stella, "checklist_template": template["id"]}
    task = api.post("/api/tasks/", json=body, headers=h["manny"]).json()
    base = f"/api/staff/tasks/{task['id']}"
    listed = api.get(f"{base}/", headers=h["stella"]).json()["checklist"]["items"]
    api.patch(f"{base}/", json={"status": "in-progress", "notes": "On it"}, headers=h["stella"])
    assert api.patch(f"{base}/checklist/{listed[0]['id']}/", json={"completed": True}, headers=h["stella"]).is_success
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    assert api.patch(f"{base}/checklist/{listed[1]['id']}/", json={"completed": True}, headers=h["stella"]).is_success
    then = api.get(f"/api/audit/task/{task['id']}/", params={"as_of": between.isoformat()}, headers=h["audra"])
    assert then.status_code == 200, then.text
    state = then.json()["state"]
    assert (state["status"], state["notes"], state["checklist_template"]) == ("in-progress", "On it", "Std")
    assert [(i["text"], i["completed"]) for i in state["checklist"]] == [
        ("Towels", True),
        ("Beds", False),
        ("Count cups", False),
    ]
    assert state["checklist"][0]["completed_by"] == stella and state["checklist"][1]["completed_by"] is None
    assert state["checklist_progress"] == {"percentage": 33, "completed": 1, "total": 3, "remaining": 2}
    now = api.get(f"/api/audit/task/{task['id']}/?as_of=2100-01-01T00:00:00Z", headers=h["audra"]).json()["state"]
    assert now["checklist_progress"]["completed"] == 2 and now["photos"] == []


def test_values_reach_the_audit_log_character_for_character(api: Api, admin) -> None:
    """The audit view's rows go in packed (one JSON text per batch on PostgreSQL): quotes, backslashes, escapes
    spelled out, line and paragraph separators, astral characters and commas come back as they were given, and
    the event's timestamp to the microsecond."""
    crew = _people(api, admin)
    title = 'a "b" \\c \\u0000 d\u2028e\u2029 \U0001f9f9, f\\",'
    notes = 'line one\nline two\t\\n {"x": [1, 2]}'
    task = api.post(
        "/api/tasks/", json={"title": title, "description": notes, "task_type": "cleaning"}, headers=crew["h"]["manny"]
    ).json()
    (created,) = _all_events(api, crew["h"]["audra"], entity="task", entity_id=str(task["id"]))
    assert created["data"]["title"] == title and created["data"]["description"] == notes
    app = api.runtime.app
    stored = app.mapper.to_domain_event(app.recorder.select_notifications(start=created["cursor"], limit=1)[0])
    assert datetime.fromisoformat(created["timestamp"]) == stored.timestamp
    history = api.get(f"/api/audit/task/{task['id']}/history/", headers=crew["h"]["audra"]).json()
    assert history["versions"][0]["changes"]["title"]["after"] == title
