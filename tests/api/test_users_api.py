"""Users: own account, admin list (filters, pagination, ordering) and admin edits."""

from __future__ import annotations

from tests.conftest import PASSWORD, Api


def test_me_update_and_password_change(api: Api) -> None:
    api.make_user("fay", "staff")
    headers = api.auth("fay")
    r = api.patch("/api/users/me/", json={"first_name": "Fay", "email": "fay@new.example.com"}, headers=headers)
    assert r.status_code == 200 and r.json()["first_name"] == "Fay" and r.json()["email"] == "fay@new.example.com"
    assert api.login("fay@new.example.com")["access"]
    r = api.patch("/api/users/me/", json={"role": "superuser"}, headers=headers)
    assert r.status_code == 400
    r = api.patch(
        "/api/users/me/", json={"old_password": "wrong-one-1", "new_password": "Brand-new-pass-2"}, headers=headers
    )
    assert r.status_code == 400 and "old_password" in r.json()["details"]
    r = api.patch(
        "/api/users/me/", json={"old_password": PASSWORD, "new_password": "Brand-new-pass-2"}, headers=headers
    )
    assert r.status_code == 200
    assert api.post("/api/token/", json={"username": "fay", "password": PASSWORD}).status_code == 401
    assert api.login("fay", "Brand-new-pass-2")["access"]


def test_email_is_unique_and_released_on_change(api: Api) -> None:
    api.make_user("gus", "staff")
    api.make_user("hal", "staff")
    gus = api.auth("gus")
    r = api.patch("/api/users/me/", json={"email": "HAL@example.com"}, headers=gus)
    assert r.status_code == 400 and "email" in r.json()["details"]
    assert api.patch("/api/users/me/", json={"email": "gus2@example.com"}, headers=gus).status_code == 200
    # The old address is free again.
    hal = api.auth("hal")
    assert api.patch("/api/users/me/", json={"email": "gus@example.com"}, headers=hal).status_code == 200


def test_list_filters_pagination_ordering(api: Api, admin: dict[str, str]) -> None:
    for i in range(25):
        api.make_user(f"staff{i:02d}", "staff", "cleaning" if i % 2 else "laundry")
    api.make_user("viewer1", "viewer", "none")
    page1 = api.get("/api/users/?role=staff&page_size=10&ordering=-username", headers=admin).json()
    assert page1["count"] == 25 and len(page1["results"]) == 10
    assert page1["results"][0]["username"] == "staff24" and page1["previous"] is None
    assert page1["next"].startswith("http") and "page=2" in page1["next"] and "role=staff" in page1["next"]
    page3 = api.get(page1["next"].replace("page=2", "page=3"), headers=admin).json()
    assert len(page3["results"]) == 5 and page3["next"] is None and "page=2" in page3["previous"]
    assert api.get("/api/users/?task_group=laundry", headers=admin).json()["count"] == 13
    assert api.get("/api/users/?search=VIEWER", headers=admin).json()["count"] == 1
    assert api.get("/api/users/?is_active=false", headers=admin).json()["count"] == 0
    assert api.get("/api/users/?page_size=500", headers=admin).json()["results"].__len__() == 27
    for bad in ("role=member", "task_group=pool", "is_active=maybe", "ordering=password_hash", "page=zero"):
        r = api.get(f"/api/users/?{bad}", headers=admin)
        assert r.status_code == 400 and r.json()["error"] == "Validation failed", bad
    assert api.get("/api/users/?page=9", headers=admin).status_code == 404


def test_admin_edits_and_role_checks(api: Api, admin: dict[str, str]) -> None:
    uid = api.make_user("ivy", "staff")
    api.make_user("mgr", "manager")
    manager = api.auth("mgr")
    assert api.get("/api/users/", headers=manager).status_code == 200
    assert api.get("/api/users/", headers=api.auth("ivy")).status_code == 403
    assert api.patch(f"/api/users/{uid}/", json={"role": "manager"}, headers=manager).status_code == 403
    r = api.patch(f"/api/users/{uid}/", json={"role": "manager", "task_group": "maintenance"}, headers=admin)
    assert r.status_code == 200 and r.json()["profile"] == {"role": "manager", "task_group": "maintenance"}
    r = api.patch(f"/api/users/{uid}/", json={"role": "boss"}, headers=admin)
    assert r.status_code == 400 and "Valid choices: superuser, manager" in r.json()["details"]["role"][0]
    assert api.patch("/api/users/999/", json={"role": "staff"}, headers=admin).json() == {"detail": "Not found."}
    me = api.get("/api/users/me/", headers=admin).json()
    assert api.patch(f"/api/users/{me['id']}/", json={"is_active": False}, headers=admin).status_code == 400
