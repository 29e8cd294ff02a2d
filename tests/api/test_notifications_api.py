"""Notifications (who is told what, reading them, rebuild keeps ids and read marks), the staff dashboard and task
counts, and the live socket."""

from __future__ import annotations

import pytest
from litestar.exceptions import WebSocketDisconnect

from tests.conftest import Api, Backend, make_api


@pytest.fixture
def crew(api: Api, admin: dict[str, str]) -> dict:
    ids = {
        "boss": api.make_user("boss", "manager", "none"),
        "cleo": api.make_user("cleo", "staff", "cleaning"),
        "carl": api.make_user("carl", "staff", "cleaning"),
        "vic": api.make_user("vic", "viewer", "none"),
    }
    return {"ids": ids, "h": {name: api.auth(name) for name in ids}}


def _notes(api: Api, headers: dict, query: str = "") -> list[dict]:
    r = api.get(f"/api/notifications/?page_size=100{query}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def _task(api: Api, crew: dict, **body) -> dict:
    r = api.post("/api/tasks/", json={"title": "Clean 101", "task_type": "cleaning", **body}, headers=crew["h"]["boss"])
    assert r.status_code == 201, r.text
    return r.json()


def test_who_is_told_what(api: Api, crew) -> None:
    h, ids = crew["h"], crew["ids"]
    task = _task(api, crew, assigned_to=ids["cleo"])
    [note] = _notes(api, h["cleo"])
    assert set(note) == {"id", "verb", "message", "task", "created_at", "is_read", "read_at"}
    assert (note["verb"], note["message"], note["task"], note["is_read"]) == (
        "assigned",
        "New task assigned: Clean 101",
        task["id"],
        False,
    )
    assert _notes(api, h["boss"]) == []  # never the actor
    # The assignee starts it: the creator hears, the assignee does not.
    api.patch(f"/api/staff/tasks/{task['id']}/", json={"status": "in-progress"}, headers=h["cleo"])
    [started] = _notes(api, h["boss"])
    assert started["verb"] == "status_changed" and "pending -> in-progress" in started["message"]
    assert len(_notes(api, h["cleo"])) == 1
    # The manager moves the due date and reassigns: the assignee hears each, the new one is told.
    api.patch(f"/api/tasks/{task['id']}/", json={"due_date": "2030-01-02T03:04:00Z"}, headers=h["boss"])
    assert _notes(api, h["cleo"])[0]["verb"] == "due_date_changed"
    api.post(f"/api/tasks/{task['id']}/assign/", json={"user": ids["carl"]}, headers=h["boss"])
    assert [n["verb"] for n in _notes(api, h["carl"])] == ["assigned"]
    assert _notes(api, h["vic"]) == []


def test_reading_notifications(api: Api, crew) -> None:
    h, ids = crew["h"], crew["ids"]
    for n in range(3):
        _task(api, crew, title=f"T{n}", assigned_to=ids["cleo"])
    notes = _notes(api, h["cleo"])
    assert [n["message"] for n in notes] == ["New task assigned: T2", "New task assigned: T1", "New task assigned: T0"]
    assert api.get("/api/notifications/unread-count/", headers=h["cleo"]).json() == {"unread_count": 3}
    r = api.post(f"/api/notifications/{notes[1]['id']}/read/", headers=h["cleo"])
    assert r.status_code == 200 and r.json()["is_read"] and r.json()["read_at"]
    assert api.post(f"/api/notifications/{notes[1]['id']}/read/", headers=h["cleo"]).status_code == 200  # idempotent
    assert api.post(f"/api/notifications/{notes[0]['id']}/read/", headers=h["carl"]).status_code == 404
    assert [n["message"] for n in _notes(api, h["cleo"], "&is_read=false")] == [
        "New task assigned: T2",
        "New task assigned: T0",
    ]
    assert api.get("/api/notifications/unread-count/", headers=h["cleo"]).json() == {"unread_count": 2}
    assert api.post("/api/notifications/mark-all-read/", headers=h["cleo"]).json() == {"marked_read": 2}
    assert api.get("/api/notifications/unread-count/", headers=h["cleo"]).json() == {"unread_count": 0}
    # Rebuilding the projection replays the same ids and the read marks.
    before = _notes(api, h["cleo"])
    api.runtime.runner.rebuild("notifications")
    assert _notes(api, h["cleo"]) == before
    _task(api, crew, title="T3", assigned_to=ids["cleo"])
    assert api.get("/api/notifications/unread-count/", headers=h["cleo"]).json() == {"unread_count": 1}
    assert api.get("/api/notifications/?is_read=maybe", headers=h["cleo"]).status_code == 400


def test_dashboard_and_counts(api: Api, crew) -> None:
    h, ids = crew["h"], crew["ids"]
    a = _task(api, crew, title="A", assigned_to=ids["cleo"])
    _task(api, crew, title="B", assigned_to=ids["cleo"])
    _task(api, crew, title="Open")
    _task(api, crew, title="Carl's", assigned_to=ids["carl"])
    api.patch(f"/api/staff/tasks/{a['id']}/", json={"status": "in-progress"}, headers=h["cleo"])
    counts = {"total": 3, "pending": 2, "in_progress": 1, "completed": 0, "canceled": 0}
    assert api.get("/api/staff/task-counts/", headers=h["cleo"]).json() == counts
    board = api.get("/api/staff/dashboard/", headers=h["cleo"]).json()
    assert board["task_counts"] == counts
    assert [t["title"] for t in board["recent_tasks"]] == ["A", "Open", "B"]
    assert set(board["recent_tasks"][0]) >= {"id", "title", "status", "due_date"}
    assert [n["message"] for n in board["notifications"]] == ["New task assigned: B", "New task assigned: A"]
    everything = api.get("/api/staff/task-counts/", headers=h["vic"]).json()
    assert everything["total"] == 4 and everything["pending"] == 3


def test_dashboard_says_what_the_lists_say(api: Api, crew) -> None:
    """The dashboard reads its three parts in one statement: each part is, field for field, what the endpoint of
    its own says, for every role and group, with titles that need escaping, dates absent and present, and
    notifications read and unread."""
    h, ids = crew["h"], crew["ids"]
    for name, group in (("gina", "general"), ("nora", "none")):
        api.make_user(name, "staff", group)
        h[name] = api.auth(name)
    titles = ["Plain 0", 'Zimmer "Süd" \\ 1', "Wash 2", "<b>Café</b> 🧹 3", "Old 4", "Last 5", "Laundry 6"]
    made = []
    for n, title in enumerate(titles):
        body = {"title": title, "task_type": "laundry" if n == 6 else "cleaning"}
        if n % 3 != 2:
            body["assigned_to"] = ids["cleo"] if n % 2 else ids["carl"]
        if n % 2:
            body["due_date"] = f"2031-0{n}-0{n}T0{n}:30:00.25Z"
        made.append(_task(api, crew, **body))
    api.patch(f"/api/staff/tasks/{made[1]['id']}/", json={"status": "in-progress"}, headers=h["cleo"])
    api.patch(f"/api/tasks/{made[0]['id']}/", json={"title": "Renamed 0"}, headers=h["boss"])
    oldest = _notes(api, h["cleo"])[-1]
    assert api.post(f"/api/notifications/{oldest['id']}/read/", headers=h["cleo"]).status_code == 200
    for name in ("cleo", "carl", "gina", "boss", "vic"):
        board = api.get("/api/staff/dashboard/", headers=h[name]).json()
        assert board["task_counts"] == api.get("/api/staff/task-counts/", headers=h[name]).json(), name
        visible = api.get("/api/tasks/?page_size=100", headers=h[name]).json()["results"]
        visible.sort(key=lambda t: (t["updated_at"], t["id"]), reverse=True)
        fields = ("id", "title", "status", "priority", "due_date")
        assert board["recent_tasks"] == [{k: t[k] for k in fields} for t in visible[:5]], name
        assert board["notifications"] == _notes(api, h[name])[:5], name
    cleo = api.get("/api/staff/dashboard/", headers=h["cleo"]).json()
    assert [t["title"] for t in cleo["recent_tasks"]] == [
        'Zimmer "Süd" \\ 1',
        "Last 5",
        "<b>Café</b> 🧹 3",
        "Wash 2",
    ]
    assert cleo["recent_tasks"][0]["due_date"] == "2031-01-01T01:30:00.250000Z"
    assert [(n["is_read"], n["read_at"] is not None) for n in cleo["notifications"]] == [(False, False), (True, True)]
    zero = {"total": 0, "pending": 0, "in_progress": 0, "completed": 0, "canceled": 0}
    assert api.get("/api/staff/dashboard/", headers=h["nora"]).json() == {
        "task_counts": zero,
        "recent_tasks": [],
        "notifications": [],
    }


def test_socket_pushes_notifications_and_counts(api: Api, crew) -> None:
    token = api.login("cleo")["access"]
    with api.websocket_connect(f"/ws/notifications/?token={token}") as ws:
        first = ws.receive_json(timeout=5)
        assert first == {
            "type": "task_counts",
            "total": 0,
            "pending": 0,
            "in_progress": 0,
            "completed": 0,
            "canceled": 0,
        }
        _task(api, crew, title="Pushed", assigned_to=crew["ids"]["cleo"])
        got = {}
        while len(got) < 2:
            message = ws.receive_json(timeout=5)
            got[message["type"]] = message
        assert got["notification"]["message"] == "New task assigned: Pushed" and got["notification"]["task"]
        assert got["task_counts"]["pending"] == 1 and got["task_counts"]["total"] == 1
        # A task for someone else changes nothing of cleo's: no push; the next one she gets is her own.
        _task(api, crew, title="Carl's", assigned_to=crew["ids"]["carl"])
        _task(api, crew, title="Second", assigned_to=crew["ids"]["cleo"])
        got = {}
        while len(got) < 2:
            message = ws.receive_json(timeout=5)
            got[message["type"]] = message
        assert got["notification"]["message"] == "New task assigned: Second"
        assert got["task_counts"]["pending"] == 2


def test_socket_refuses_bad_tokens_with_4001(api: Api, crew) -> None:
    refresh = api.login("cleo")["refresh"]
    for token in ("", "garbage", refresh):
        with (
            api.websocket_connect(f"/ws/notifications/?token={token}") as ws,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            ws.receive_json(timeout=5)
        assert closed.value.code == 4001


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # processes share pushes through Redis
def test_pushes_reach_sockets_on_every_process(backend: Backend) -> None:
    first, second = make_api(backend), make_api(backend)
    a, b = next(first), next(second)
    try:
        b.make_user("boss", "manager", "none")
        cleo = b.make_user("cleo", "staff", "cleaning")
        token = a.login("cleo")["access"]
        with a.websocket_connect(f"/ws/notifications/?token={token}") as ws:
            assert ws.receive_json(timeout=5)["type"] == "task_counts"
            r = b.post(
                "/api/tasks/",
                json={"title": "Elsewhere", "task_type": "cleaning", "assigned_to": cleo},
                headers=b.auth("boss"),
            )
            assert r.status_code == 201
            types = {ws.receive_json(timeout=5)["type"] for _ in range(2)}
            assert types == {"notification", "task_counts"}
    finally:
        for gen in (first, second):
            next(gen, None)


def test_socket_closes_with_4001_when_its_token_expires(backend: Backend) -> None:
    for api in make_api(backend, COSMO_ACCESS_TOKEN_TTL="2"):
        api.make_user("cleo", "staff", "cleaning")
        token = api.login("cleo")["access"]
        with api.websocket_connect(f"/ws/notifications/?token={token}") as ws:
            assert ws.receive_json(timeout=5)["type"] == "task_counts"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json(timeout=5)
            assert closed.value.code == 4001
