"""Isolation and security: deployments sharing a Redis server, sessions that end, login names, all-or-nothing
edits, frozen proof, dead links, public addresses, logs, concurrent retried edits and the CLI's database."""

from __future__ import annotations

import io
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from litestar.exceptions import WebSocketDisconnect
from PIL import Image

from cosmo.cli import main
from tests.conftest import PASSWORD, Api, Backend, make_api


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "red").save(out, "JPEG")
    return out.getvalue()


def _upload(api: Api, task_id: int, headers: dict, **fields) -> dict:
    r = api.post(
        f"/api/tasks/{task_id}/images/create/",
        files={"image": ("p.jpg", _jpeg(), "image/jpeg")},
        data={"photo_type": "after", **{k: str(v) for k, v in fields.items()}},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_deployments_on_one_redis_hear_only_their_own_pushes(backend: Backend, other_pg_database: str) -> None:
    """Two databases on one PostgreSQL server, both with the same Redis URL (and database number): two
    deployments. Their users have the same ids."""
    other = Backend("postgres", {**backend.env, "COSMO_DATABASE_URL": other_pg_database})
    first, second = make_api(backend), make_api(other)
    a, b = next(first), next(second)
    try:
        for api in (a, b):
            api.make_user("boss", "manager", "none")
            cleo = api.make_user("cleo", "staff", "cleaning")
        token = b.login("cleo")["access"]
        with b.websocket_connect(f"/ws/notifications/?token={token}") as ws:
            assert ws.receive_json(timeout=5)["type"] == "task_counts"
            task = {"title": "Deployment A's", "task_type": "cleaning", "assigned_to": cleo}
            assert a.post("/api/tasks/", json=task, headers=a.auth("boss")).status_code == 201
            own = {**task, "title": "Deployment B's"}
            assert b.post("/api/tasks/", json=own, headers=b.auth("boss")).status_code == 201
            # The first push this socket hears is its own deployment's.
            pushes = [ws.receive_json(timeout=5) for _ in range(2)]
            notes = [p for p in pushes if p["type"] == "notification"]
            assert [n["message"] for n in notes] == ["New task assigned: Deployment B's"]
    finally:
        for gen in (first, second):
            next(gen, None)


@pytest.mark.parametrize("how", ["deactivated", "password changed"])
def test_open_sockets_close_when_the_session_ends(api: Api, admin: dict[str, str], how: str) -> None:
    cleo = api.make_user("cleo", "staff", "cleaning")
    token = api.login("cleo")["access"]
    with api.websocket_connect(f"/ws/notifications/?token={token}") as ws:
        assert ws.receive_json(timeout=5)["type"] == "task_counts"
        if how == "deactivated":
            r = api.patch(f"/api/users/{cleo}/", json={"is_active": False}, headers=admin)
        else:
            body = {"old_password": PASSWORD, "new_password": "Another-horse-7"}
            r = api.patch("/api/users/me/", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json(timeout=5)
        assert closed.value.code == 4001


def test_a_login_name_identifies_one_user(api: Api, admin: dict[str, str]) -> None:
    api.make_user("alice", "staff", email="alice@example.com")
    code = api.post("/api/admin/create-invite-code/", json={"role": "staff", "task_group": "none"}, headers=admin)
    body = {
        "username": "alice@example.com",
        "email": "mallory@example.com",
        "password": "Correct-horse-9",
        "password_confirm": "Correct-horse-9",
        "invite_code": code.json()["code"],
    }
    r = api.post("/api/register/", json=body)
    assert r.status_code == 400 and "username" in r.json()["details"]
    # The reverse: an email that is another user's username.
    r = api.post("/api/register/", json={**body, "username": "mallory", "email": "Alice"})
    assert r.status_code == 400 and "email" in r.json()["details"]
    assert api.post("/api/register/", json={**body, "username": "mallory"}).status_code == 201
    mallory = api.auth("mallory", "Correct-horse-9")
    r = api.patch("/api/users/me/", json={"email": "alice@example.com"}, headers=mallory)
    assert r.status_code == 400 and "email" in r.json()["details"]
    # Alice still logs in with her email, and a user's own username may be their email.
    assert api.login("alice@example.com")["access"]
    api.make_user("bob@example.com", "staff", email="bob@example.com")
    assert api.login("bob@example.com")["access"]
    # An email given up is free again.
    alice = api.auth("alice")
    assert api.patch("/api/users/me/", json={"email": "alice@new.example.com"}, headers=alice).status_code == 200
    r = api.patch("/api/users/me/", json={"email": "alice@example.com"}, headers=mallory)
    assert r.status_code == 200 and r.json()["email"] == "alice@example.com"


def test_a_refused_password_change_changes_nothing(api: Api) -> None:
    api.make_user("cleo", "staff", "cleaning")
    headers = api.auth("cleo")
    body = {"first_name": "Changed", "email": "new@example.com", "old_password": "wrong", "new_password": "X-long-pw-9"}
    r = api.patch("/api/users/me/", json=body, headers=headers)
    assert r.status_code == 400 and "old_password" in r.json()["details"]
    me = api.get("/api/users/me/", headers=headers).json()
    assert (me["first_name"], me["email"]) == ("", "cleo@example.com")
    body["old_password"] = PASSWORD
    assert api.patch("/api/users/me/", json=body, headers=headers).status_code == 200
    fresh = api.auth("cleo", "X-long-pw-9")
    me = api.get("/api/users/me/", headers=fresh).json()
    assert (me["first_name"], me["email"]) == ("Changed", "new@example.com")


def test_proof_of_a_completed_task_is_frozen(api: Api, admin: dict[str, str]) -> None:
    api.make_user("boss", "manager", "none")
    cleo = api.make_user("cleo", "staff", "cleaning")
    boss, staff = api.auth("boss"), api.auth("cleo")
    template = api.post(
        "/api/checklist-templates/",
        json={"name": "Proof", "task_type": "cleaning", "items": [{"text": "Bathroom", "item_type": "photo_required"}]},
        headers=boss,
    ).json()
    task = api.post(
        "/api/tasks/",
        json={"title": "T", "task_type": "cleaning", "assigned_to": cleo, "checklist_template": template["id"]},
        headers=boss,
    ).json()
    item = api.get(f"/api/staff/tasks/{task['id']}/", headers=staff).json()["checklist"]["items"][0]
    photo = _upload(api, task["id"], staff, checklist_item=item["id"])
    for status in ("in-progress", "completed"):
        assert api.patch(f"/api/staff/tasks/{task['id']}/", json={"status": status}, headers=staff).status_code == 200
    for who in (staff, boss):
        r = api.delete(f"/api/tasks/{task['id']}/images/{photo['id']}/", headers=who)
        assert r.status_code == 400 and "task" in r.json()["details"]
    r = api.post(
        f"/api/tasks/{task['id']}/images/create/",
        files={"image": ("p.jpg", _jpeg(), "image/jpeg")},
        data={"photo_type": "after"},
        headers=staff,
    )
    assert r.status_code == 400 and "task" in r.json()["details"]
    r = api.patch(f"/api/tasks/{task['id']}/images/{photo['id']}/", json={"photo_status": "archived"}, headers=boss)
    assert r.status_code == 200 and r.json()["photo_status"] == "archived"


def test_a_deleted_photos_links_stop_working(api: Api) -> None:
    api.make_user("boss", "manager", "none")
    cleo = api.make_user("cleo", "staff", "cleaning")
    boss, staff = api.auth("boss"), api.auth("cleo")
    task = api.post("/api/tasks/", json={"title": "T", "task_type": "cleaning", "assigned_to": cleo}, headers=boss)
    photo = _upload(api, task.json()["id"], staff)
    links = [urlsplit(photo[k]) for k in ("image", "thumbnail")]
    for link in links:
        served = api.get(f"{link.path}?{link.query}")
        assert served.status_code == 200
        assert served.headers["Cache-Control"].startswith("private, max-age=")
        assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert api.delete(f"/api/tasks/{task.json()['id']}/images/{photo['id']}/", headers=staff).status_code == 204
    for link in links:
        assert api.get(f"{link.path}?{link.query}").status_code == 403
    # The file itself stays on disk, for audit.
    assert (api.runtime.media.root / links[0].path.removeprefix("/media/")).is_file()


def test_absolute_links_use_the_public_address_not_the_host_header(backend: Backend) -> None:
    for api in make_api(backend, COSMO_PUBLIC_URL="https://ops.example.com/"):
        api.make_user("boss", "manager", "none")
        cleo = api.make_user("cleo", "staff", "cleaning")
        evil = {**api.auth("boss"), "Host": "evil.example.net"}
        for title in ("A", "B"):
            api.post("/api/tasks/", json={"title": title, "task_type": "cleaning", "assigned_to": cleo}, headers=evil)
        page = api.get("/api/tasks/?page_size=1", headers=evil).json()
        assert page["next"] == "https://ops.example.com/api/tasks/?page_size=1&page=2"
        photo = _upload(api, page["results"][0]["id"], {**api.auth("cleo"), "Host": "evil.example.net"})
        assert photo["image"].startswith("https://ops.example.com/media/task_images/")


def test_server_logs_redact_tokens(backend: Backend) -> None:
    """A real uvicorn server: the WebSocket handshake line (logged on uvicorn.error) and an HTTP request line
    (uvicorn.access) show `token=[redacted]`, never the token."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    from cosmo.api.app import create_app

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    capture = Capture()
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(capture)
        logger.setLevel(logging.INFO)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(backend.settings()), port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0.c2lnbmF0dXJl"
        with (
            connect(f"ws://127.0.0.1:{port}/ws/notifications/?token={secret}&x=1") as ws,
            pytest.raises(ConnectionClosed),  # 4001: the token is not valid
        ):
            ws.recv(timeout=5)
        assert httpx.get(f"http://127.0.0.1:{port}/api/health/?token={secret}").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        for logger in loggers:
            logger.removeHandler(capture)
    handshake = [line for line in lines if "WebSocket" in line]
    assert handshake and all("token=[redacted]&x=1" in line for line in handshake), lines
    assert any("GET /api/health" in line and "token=[redacted]" in line for line in lines), lines
    assert not [line for line in lines if "c2VjcmV0" in line]


def test_concurrent_checklist_edits_are_retried_not_refused(api: Api) -> None:
    api.make_user("boss", "manager", "none")
    cleo = api.make_user("cleo", "staff", "cleaning")
    boss, staff = api.auth("boss"), api.auth("cleo")
    items = [{"text": f"Item {n}"} for n in range(10)]
    template = api.post(
        "/api/checklist-templates/", json={"name": "Ten", "task_type": "cleaning", "items": items}, headers=boss
    ).json()
    task = api.post(
        "/api/tasks/",
        json={"title": "T", "task_type": "cleaning", "assigned_to": cleo, "checklist_template": template["id"]},
        headers=boss,
    ).json()
    item_ids = [i["id"] for i in api.get(f"/api/staff/tasks/{task['id']}/", headers=staff).json()["checklist"]["items"]]

    def check(n: int) -> int:
        body = {"completed": True, "notes": f"pass {n}"}
        return api.patch(f"/api/staff/tasks/{task['id']}/checklist/{item_ids[n % 10]}/", json=body, headers=staff)

    with ThreadPoolExecutor(32) as pool:
        codes = [r.status_code for r in pool.map(check, range(100))]
    assert codes == [200] * 100, codes
    progress = api.get(f"/api/staff/tasks/{task['id']}/progress/", headers=staff).json()
    assert progress["completed"] == 10


def test_cli_commands_do_not_create_a_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"COSMO_DATABASE_URL": f"sqlite:///{elsewhere / 'cosmo.db'}", "COSMO_PASSWORD_COST": "low"}
    runner = CliRunner()
    for args in (
        ["projections", "status"],
        ["projections", "rebuild", "--all"],
        ["createsuperuser", "--username", "x", "--password", "Long-enough-1"],
    ):
        r = runner.invoke(main, args, env=env)
        assert r.exit_code != 0 and "no database at" in r.output, r.output
    assert os.listdir(elsewhere) == []
    assert runner.invoke(main, ["migrate"], env=env).exit_code == 0
    assert runner.invoke(main, ["projections", "status"], env=env).exit_code == 0
