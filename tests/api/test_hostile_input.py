"""Hostile and careless input: every value a command would store is checked at the edge (a 400 naming the field),
and nothing a client sends is a 500 or an error-level log line, on both backends."""

from __future__ import annotations

import logging

import jwt
import pytest

from tests.conftest import SECRET, Api

NUL = "a\x00b"
HUGE = 2**63
DEEP = b'{"username": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "x"}'


@pytest.fixture
def crew(api: Api, admin: dict[str, str]) -> dict:
    boss_id = api.make_user("boss", "manager", "none")
    cleo_id = api.make_user("cleo", "staff", "cleaning")
    h = {"admin": admin, "boss": api.auth("boss"), "cleo": api.auth("cleo")}
    prop = api.post("/api/properties/", json={"name": "Main"}, headers=h["boss"]).json()
    template = api.post(
        "/api/checklist-templates/",
        json={"name": "Std", "task_type": "cleaning", "items": [{"text": "Count towels", "item_type": "number_input"}]},
        headers=h["boss"],
    ).json()
    task = api.post(
        "/api/tasks/",
        json={"title": "Clean", "task_type": "cleaning", "assigned_to": cleo_id, "checklist_template": template["id"]},
        headers=h["boss"],
    ).json()
    return {"h": h, "boss_id": boss_id, "cleo_id": cleo_id, "property": prop, "task": task}


@pytest.fixture
def no_error_logs(caplog: pytest.LogCaptureFixture):
    """Whatever the client sent, nothing is logged at error level (no traceback of ours)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


def _refused(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert body["error"] == "Validation failed" and field in body["details"], body


def test_text_fields_refuse_control_characters(api: Api, crew, no_error_logs) -> None:
    h, task = crew["h"], crew["task"]
    item = api.get(f"/api/staff/tasks/{task['id']}/", headers=h["cleo"]).json()["checklist"]["items"][0]
    cases = [
        ("patch", f"/api/staff/tasks/{task['id']}/", {"notes": NUL}, "cleo", "notes"),
        ("patch", f"/api/tasks/{task['id']}/", {"title": NUL}, "boss", "title"),
        ("patch", f"/api/tasks/{task['id']}/", {"title": "tab\there"}, "boss", "title"),
        ("post", "/api/tasks/", {"title": "x", "task_type": "cleaning", "description": NUL}, "boss", "description"),
        ("patch", f"/api/staff/tasks/{task['id']}/checklist/{item['id']}/", {"notes": NUL}, "cleo", "notes"),
        (
            "patch",
            f"/api/staff/tasks/{task['id']}/checklist/{item['id']}/",
            b'{"value": ' + b"9" * 5000 + b"}",  # refused by the JSON decoder itself
            "cleo",
            "non_field_errors",
        ),
        ("patch", f"/api/staff/tasks/{task['id']}/checklist/{item['id']}/", {"value": 2**100}, "cleo", "value"),
        ("patch", f"/api/staff/tasks/{task['id']}/checklist/{item['id']}/", {"value": HUGE}, "cleo", "value"),
        ("patch", f"/api/properties/{crew['property']['id']}/", {"address": NUL}, "boss", "address"),
        ("post", f"/api/properties/{crew['property']['id']}/units/", {"unit_number": NUL}, "boss", "unit_number"),
        ("patch", f"/api/properties/{crew['property']['id']}/", {"timezone": "UTC\x00"}, "boss", "timezone"),
        ("post", "/api/checklist-templates/", {"name": NUL, "task_type": "cleaning"}, "boss", "name"),
        ("patch", "/api/users/me/", {"first_name": NUL}, "cleo", "first_name"),
        ("patch", "/api/users/me/", {"email": "a\x00@example.com"}, "cleo", "email"),
        (
            "post",
            "/api/admin/create-invite-code/",
            {"role": "staff", "task_group": "none", "notes": NUL},
            "boss",
            "notes",
        ),
    ]
    for method, path, body, who, field in cases:
        if isinstance(body, bytes):  # what a JSON library of ours would refuse to write
            sent = getattr(api, method)(path, content=body, headers={**h[who], "content-type": "application/json"})
        else:
            sent = getattr(api, method)(path, json=body, headers=h[who])
        _refused(sent, field)
    # Multi-line text keeps its tabs and line breaks.
    r = api.patch(f"/api/staff/tasks/{task['id']}/", json={"notes": "line 1\n\tline 2\r\n"}, headers=h["cleo"])
    assert r.status_code == 200 and r.json()["notes"] == "line 1\n\tline 2\r\n"
    r = api.patch(f"/api/staff/tasks/{task['id']}/checklist/{item['id']}/", json={"value": 12}, headers=h["cleo"])
    assert r.status_code == 200 and r.json()["value"] == "12"


def test_registration_refuses_control_characters_before_any_login(api: Api, crew, no_error_logs) -> None:
    code = api.post(
        "/api/admin/create-invite-code/", json={"role": "staff", "task_group": "cleaning"}, headers=crew["h"]["boss"]
    ).json()["code"]
    body = {
        "username": "newbie",
        "email": "newbie@example.com",
        "password": "Correct-horse-9",
        "password_confirm": "Correct-horse-9",
        "invite_code": code,
        "first_name": NUL,
    }
    _refused(api.post("/api/register/", json=body), "first_name")
    assert api.post("/api/register/", json={**body, "first_name": "Newbie"}).status_code == 201


def test_integers_and_dates_out_of_range(api: Api, crew, no_error_logs) -> None:
    boss = crew["h"]["boss"]
    for max_uses in (HUGE, 2**64, -1):
        r = api.post(
            "/api/admin/create-invite-code/",
            json={"role": "staff", "task_group": "none", "max_uses": max_uses},
            headers=boss,
        )
        _refused(r, "max_uses")
    for moment in (
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
    ):
        _refused(
            api.post("/api/tasks/", json={"title": "x", "task_type": "cleaning", "due_date": moment}, headers=boss),
            "due_date",
        )
        _refused(api.patch(f"/api/tasks/{crew['task']['id']}/", json={"due_date": moment}, headers=boss), "due_date")
    r = api.post(
        "/api/admin/create-invite-code/",
        json={"role": "staff", "task_group": "none", "expires_at": "9999-12-31T23:59:59-14:00"},
        headers=boss,
    )
    _refused(r, "expires_at")
    # The edges themselves are fine.
    r = api.patch(f"/api/tasks/{crew['task']['id']}/", json={"due_date": "9999-12-31T09:59:59-14:00"}, headers=boss)
    assert r.status_code == 200 and r.json()["due_date"] == "9999-12-31T23:59:59Z"
    r = api.patch(f"/api/tasks/{crew['task']['id']}/", json={"due_date": "1900-01-01T00:00:00Z"}, headers=boss)
    assert r.status_code == 200
    for bad in (HUGE, 2**70, -(2**63) - 1):
        for field in ("assigned_to", "property", "unit", "checklist_template"):
            r = api.post("/api/tasks/", json={"title": "x", "task_type": "cleaning", field: bad}, headers=boss)
            assert r.status_code == 400, (field, r.text)
    assert api.post(f"/api/tasks/{crew['task']['id']}/assign/", json={"user": HUGE}, headers=boss).status_code == 400


def test_bodies_that_do_not_decode(api: Api, crew, no_error_logs) -> None:
    for path in ("/api/token/", "/api/register/", "/api/validate-invite/"):
        r = api.post(
            path, content=b'{"username": "\xff\xfe", "code": "\xc3"}', headers={"content-type": "application/json"}
        )
        _refused(r, "non_field_errors")
        _refused(api.post(path, content=DEEP, headers={"content-type": "application/json"}), "non_field_errors")
    r = api.patch(
        f"/api/tasks/{crew['task']['id']}/",
        content=b'{"title": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        headers={**crew["h"]["boss"], "content-type": "application/json"},
    )
    _refused(r, "non_field_errors")
    r = api.post("/api/token/", json={"username": NUL, "password": "x"})
    _refused(r, "username")


def test_query_parameters(api: Api, crew, no_error_logs) -> None:
    h = crew["h"]["boss"]
    lists = [
        "/api/tasks/",
        "/api/staff/tasks/",
        "/api/users/",
        "/api/properties/",
        "/api/checklist-templates/",
        "/api/admin/invite-codes/",
        "/api/notifications/",
    ]
    for path in lists:
        for name in ("page", "page_size"):
            for value in ("²", "٣", "-1", "0", "1.5", "9" * 5000):
                r = api.get(path, params={name: value}, headers=h)
                assert r.status_code == 400 and name in r.json()["details"], (path, name, value, r.text)
        assert api.get(path, params={"page": "99999999"}, headers=h).status_code == 404
        assert api.get(path, params={"ordering": NUL}, headers=h).status_code == 400
    for name in ("assigned_to", "property"):
        for value in (str(HUGE), str(-(2**63) - 1), "9" * 5000, "²"):
            _refused(api.get("/api/tasks/", params={name: value}, headers=h), name)
    for value in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "nonsense"):
        _refused(api.get("/api/tasks/", params={"due_before": value}, headers=h), "due_before")
    for path in ("/api/tasks/", "/api/users/", "/api/properties/"):
        _refused(api.get(path, params={"search": NUL}, headers=h), "search")
        _refused(api.get(path, params={"search": "x" * 201}, headers=h), "search")
        assert api.get(path, params={"search": "ma"}, headers=h).status_code == 200


def test_ids_beyond_64_bits_are_not_found(api: Api, crew, no_error_logs) -> None:
    h = crew["h"]["boss"]
    task_id = crew["task"]["id"]
    for big in (HUGE, 2**70, 10**30):
        for method, path in (
            ("get", f"/api/tasks/{big}/"),
            ("get", f"/api/staff/tasks/{big}/"),
            ("patch", f"/api/staff/tasks/{big}/"),
            ("get", f"/api/users/{big}/"),
            ("get", f"/api/properties/{big}/"),
            ("get", f"/api/properties/{crew['property']['id']}/units/{big}/"),
            ("get", f"/api/checklist-templates/{big}/"),
            ("get", f"/api/tasks/{task_id}/images/{big}/"),
            ("post", f"/api/notifications/{big}/read/"),
            ("post", f"/api/admin/invite-codes/{big}/revoke/"),
        ):
            kwargs = {"json": {"status": "pending"}} if method == "patch" else {}
            r = getattr(api, method)(path, headers=h, **kwargs)
            assert r.status_code == 404 and r.json() == {"detail": "Not found."}, (path, r.status_code, r.text)


def test_media_urls_with_odd_parameters(api: Api, crew, no_error_logs) -> None:
    name = "task_images/1/1-abc.jpg"
    for expires, signature in (("²", "x"), ("9" * 5000, "x"), ("1", "\x00"), ("-1", "é" * 32), ("", "")):
        r = api.get(f"/media/{name}", params={"expires": expires, "signature": signature})
        assert r.status_code == 403, (expires, r.status_code)
    assert api.get("/media/../../etc/passwd?expires=1&signature=x").status_code in (403, 404)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "9999999999"},
        {"user_id": True},
        {"user_id": 2**63},
        {"user_id": "1"},
        {"iat": "0"},
        {"jti": 5},
        {"exp": 10**20},
    ],
)
def test_signed_tokens_with_odd_claims_are_401(api: Api, crew, claims, no_error_logs) -> None:
    import time

    payload = {"token_type": "access", "user_id": crew["cleo_id"], "jti": "x" * 32, "iat": int(time.time())}
    payload |= {"exp": int(time.time()) + 600} | claims
    token = jwt.encode(payload, SECRET, algorithm="HS256")
    r = api.get("/api/users/me/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    # The same token with well-typed claims is accepted:
    fixed = {
        "token_type": "access",
        "user_id": crew["cleo_id"],
        "jti": "y" * 32,
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
    }
    ok = api.get("/api/users/me/", headers={"Authorization": f"Bearer {jwt.encode(fixed, SECRET, algorithm='HS256')}"})
    assert ok.status_code == 200


def test_security_headers_on_every_response(api: Api, crew) -> None:
    for path in ("/api/health/", "/api/nothing-here/", "/api/users/me/"):
        assert api.get(path).headers["X-Content-Type-Options"] == "nosniff"
    assert api.delete("/api/token/").headers["X-Content-Type-Options"] == "nosniff"
