"""Aggregate rules, without storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cosmo.auth.passwords import hash_password, verify_password
from cosmo.domain.errors import PermissionDenied, ValidationFailed
from cosmo.domain.identity import InviteCode, User, check_can_issue, check_password

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _invite(**kw) -> InviteCode:
    args = dict(
        invite_id=1,
        code="ABCDEFGH",
        role="staff",
        task_group="cleaning",
        max_uses=2,
        expires_at=NOW + timedelta(days=1),
        notes="",
        created_by=1,
    )
    return InviteCode(**{**args, **kw})


def test_invite_uses_up_expires_and_revokes() -> None:
    invite = _invite()
    invite.use(10, NOW)
    invite.use(11, NOW)
    with pytest.raises(ValidationFailed, match="maximum"):
        invite.use(12, NOW)
    assert invite.used_count == 2
    unlimited = _invite(max_uses=0)
    for i in range(50):
        unlimited.use(i, NOW)
    assert unlimited.problem(NOW + timedelta(days=2)) == "This invite code has expired."
    unlimited.revoke(actor_id=1)
    assert unlimited.problem(NOW) == "This invite code has been revoked."
    events = len(unlimited.collect_events())
    unlimited.revoke(actor_id=1)  # idempotent: no second event
    assert unlimited.collect_events() == [] and events == 52


def test_issuing_rules_and_self_protection() -> None:
    check_can_issue("manager", "staff")
    check_can_issue("superuser", "superuser")
    with pytest.raises(PermissionDenied):
        check_can_issue("manager", "manager")
    with pytest.raises(PermissionDenied):
        check_can_issue("staff", "viewer")
    user = User(
        user_id=5,
        username="u",
        email="",
        password_hash="h",
        first_name="",
        last_name="",
        role="manager",
        task_group="none",
        invite_code_id=None,
        actor_id=None,
    )
    with pytest.raises(ValidationFailed):
        user.change_access({"is_active": False}, actor_id=5)
    user.change_access({"task_group": "cleaning", "role": "manager"}, actor_id=5)
    assert user.task_group == "cleaning"
    assert [type(e).__name__ for e in user.collect_events()] == ["Registered", "AccessChanged"]


def test_passwords() -> None:
    encoded = hash_password("Correct-horse-9", "low")
    assert encoded.startswith("scrypt$") and verify_password("Correct-horse-9", encoded)
    assert not verify_password("wrong", encoded) and not verify_password("x", "garbage")
    assert hash_password("same-pass-1", "low") != hash_password("same-pass-1", "low")
    assert check_password("12345678") == ["This password is entirely numeric."]
    assert check_password("alice123", "ALICE123")
