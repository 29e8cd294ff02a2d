"""Invite codes and registration, end to end through the API."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import PASSWORD, Api


def _invite(api: Api, headers: dict[str, str], **body: object) -> dict:
    r = api.post(
        "/api/admin/create-invite-code/", json={"role": "staff", "task_group": "cleaning", **body}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def _register(api: Api, code: str, username: str, **extra: str):
    body = {
        "username": username,
        "email": f"{username}@example.com",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
        "first_name": "New",
        "last_name": "User",
        "invite_code": code,
        **extra,
    }
    return api.post("/api/register/", json=body)


def test_invite_validate_register_login(api: Api, admin: dict[str, str]) -> None:
    invite = _invite(api, admin, max_uses=2, expires_at="2099-12-31T23:59:59Z", notes="cleaners")
    assert re.fullmatch(r"[A-Z0-9]{8,}", invite["code"])
    assert invite["used_count"] == 0 and invite["is_active"] is True and invite["expires_at"] == "2099-12-31T23:59:59Z"
    r = api.post("/api/validate-invite/", json={"code": invite["code"]})
    assert r.json() == {"valid": True, "task_group": "cleaning", "role": "staff", "expires_at": "2099-12-31T23:59:59Z"}
    r = _register(api, invite["code"], "newbie")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == {
        "id": body["id"],
        "username": "newbie",
        "email": "newbie@example.com",
        "first_name": "New",
        "last_name": "User",
        "profile": {"task_group": "cleaning", "role": "staff"},
    }
    me = api.get("/api/users/me/", headers=api.auth("newbie")).json()
    assert me["profile"] == {"role": "staff", "task_group": "cleaning"} and me["is_active"] is True
    listed = api.get("/api/admin/invite-codes/", headers=admin).json()
    assert listed["count"] == 1 and listed["results"][0]["used_count"] == 1


def test_invalid_codes_and_registration_errors(api: Api, admin: dict[str, str]) -> None:
    assert api.post("/api/validate-invite/", json={"code": "NOPE1234"}).json() == {
        "valid": False,
        "error": "Invalid invite code.",
    }
    invite = _invite(api, admin)
    r = _register(api, "NOPE1234", "x1")
    assert r.status_code == 400 and r.json()["details"]["invite_code"] == ["Invalid invite code."]
    r = _register(api, invite["code"], "bad user!", email="not-an-email", password_confirm="different-9")
    assert r.status_code == 400
    assert set(r.json()["details"]) == {"username", "email", "password_confirm"}
    assert r.json()["error"] == "Validation failed"
    api.make_user("taken", "staff")
    r = _register(api, invite["code"], "TAKEN")
    assert r.status_code == 400 and "username" in r.json()["details"]
    # Nothing was half-applied: the refused registrations did not use the code.
    assert api.get("/api/admin/invite-codes/", headers=admin).json()["results"][0]["used_count"] == 0


def test_exhausted_revoked_and_racing_for_the_last_use(api: Api, admin: dict[str, str]) -> None:
    invite = _invite(api, admin, max_uses=1)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _register(api, invite["code"], f"racer{i}").status_code, range(4)))
    assert sorted(results) == [201, 400, 400, 400]
    r = api.post("/api/validate-invite/", json={"code": invite["code"]})
    assert r.json() == {"valid": False, "error": "This invite code has reached its maximum number of uses."}

    other = _invite(api, admin, max_uses=0)
    r = api.post(f"/api/admin/invite-codes/{other['id']}/revoke/", headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert api.post("/api/validate-invite/", json={"code": other["code"]}).json()["valid"] is False
    assert _register(api, other["code"], "late").status_code == 400
    assert api.post("/api/admin/invite-codes/9999/revoke/", headers=admin).status_code == 404


def test_who_may_issue_invites(api: Api, admin: dict[str, str]) -> None:
    api.make_user("boss", "manager")
    api.make_user("worker", "staff")
    manager, staff = api.auth("boss"), api.auth("worker")
    assert _invite(api, manager, role="viewer")["role"] == "viewer"
    r = api.post("/api/admin/create-invite-code/", json={"role": "manager", "task_group": "none"}, headers=manager)
    assert r.status_code == 403 and r.json() == {"error": "Permission denied"}
    assert (
        api.post(
            "/api/admin/create-invite-code/", json={"role": "staff", "task_group": "none"}, headers=staff
        ).status_code
        == 403
    )
    assert api.get("/api/admin/invite-codes/", headers=staff).status_code == 403
    assert _invite(api, admin, role="manager", task_group="none")["role"] == "manager"
    r = api.post("/api/admin/create-invite-code/", json={"role": "member", "task_group": "general"}, headers=admin)
    assert r.status_code == 400
    assert r.json()["details"]["role"] == [
        '"member" is not a valid choice. Valid choices: superuser, manager, staff, viewer, auditor.'
    ]
    r = api.post(
        "/api/admin/create-invite-code/",
        json={"role": "staff", "task_group": "pool", "max_uses": -1, "expires_at": "2001-01-01T00:00:00Z"},
        headers=admin,
    )
    assert set(r.json()["details"]) == {"task_group", "max_uses", "expires_at"}
