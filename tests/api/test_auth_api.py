"""Tokens: obtain, refresh with rotation, revoke, and what stops a token working."""

from __future__ import annotations

import time
from datetime import timedelta

import jwt
import pytest

from cosmo.auth.tokens import InvalidToken, TokenService
from cosmo.runtime import Runtime
from tests.conftest import PASSWORD, SECRET, Api

BAD = {"detail": "No active account found with the given credentials"}


def test_login_by_username_or_email_and_bad_credentials(api: Api) -> None:
    api.make_user("alice", "staff", email="Alice@Example.com")
    tokens = api.login("alice")
    claims = jwt.decode(tokens["access"], SECRET, algorithms=["HS256"])
    assert claims["token_type"] == "access" and claims["user_id"] >= 1 and claims["jti"]
    assert claims["exp"] - claims["iat"] == 30 * 60
    assert api.login("alice@example.com")["access"]
    for body in (
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": PASSWORD},
    ):
        r = api.post("/api/token/", json=body)
        assert r.status_code == 401 and r.json() == BAD
    me = api.get("/api/users/me/", headers={"Authorization": f"Bearer {tokens['access']}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"


def test_refresh_rotates_and_reuse_revokes_the_family(api: Api) -> None:
    api.make_user("bob", "staff")
    first = api.login("bob")
    r = api.post("/api/token/refresh/", json={"refresh": first["refresh"]})
    assert r.status_code == 200
    second = r.json()
    assert set(second) == {"access", "refresh"} and second["refresh"] != first["refresh"]
    # The used token is dead; presenting it again is treated as theft and kills the newer one too.
    assert api.post("/api/token/refresh/", json={"refresh": first["refresh"]}).status_code == 401
    assert api.post("/api/token/refresh/", json={"refresh": second["refresh"]}).status_code == 401


def test_revoke(api: Api) -> None:
    api.make_user("carol", "staff")
    tokens = api.login("carol")
    r = api.post("/api/token/revoke/", json={"refresh": tokens["refresh"]})
    assert r.status_code == 200 and r.json() == {"detail": "Token revoked"}
    assert api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}).status_code == 401
    assert api.post("/api/token/revoke/", json={"refresh": tokens["refresh"]}).status_code == 401
    # An access token is not a refresh token.
    assert api.post("/api/token/refresh/", json={"refresh": tokens["access"]}).status_code == 401


def test_deactivated_users_tokens_stop_at_once(api: Api, admin: dict[str, str]) -> None:
    user_id = api.make_user("dave", "staff")
    tokens = api.login("dave")
    headers = {"Authorization": f"Bearer {tokens['access']}"}
    assert api.get("/api/users/me/", headers=headers).status_code == 200
    r = api.patch(f"/api/users/{user_id}/", json={"is_active": False}, headers=admin)
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert api.get("/api/users/me/", headers=headers).status_code == 401
    assert api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}).status_code == 401
    assert api.post("/api/token/", json={"username": "dave", "password": PASSWORD}).json() == BAD


def test_forged_expired_and_missing_tokens(api: Api) -> None:
    api.make_user("erin", "staff")
    now = int(time.time())
    claims = {"token_type": "access", "user_id": 1, "jti": "x", "iat": now, "exp": now + 60}
    forged = jwt.encode(claims, "another-secret-of-at-least-32-bytes!!", algorithm="HS256")
    expired = jwt.encode({**claims, "iat": now - 120, "exp": now - 60}, SECRET, algorithm="HS256")
    for headers in ({"Authorization": f"Bearer {forged}"}, {"Authorization": f"Bearer {expired}"}, {}):
        r = api.get("/api/users/me/", headers=headers)
        assert r.status_code == 401 and "detail" in r.json()
    assert api.get("/api/users/me/").json() == {"detail": "Authentication credentials were not provided."}


def test_a_remembered_access_token_still_expires(runtime: Runtime) -> None:
    tokens = TokenService(SECRET, timedelta(seconds=1), timedelta(days=1), runtime.db)
    access = tokens.issue_pair(1)["access"]
    assert tokens.decode(access, "access").user_id == 1
    assert tokens.decode(access, "access").user_id == 1  # now from the cache
    with pytest.raises(InvalidToken):
        tokens.decode(access + "x", "access")
    time.sleep(1.1)
    with pytest.raises(InvalidToken):
        tokens.decode(access, "access")
