"""Identity: users, invite codes, and the unique keys that keep usernames, emails and codes unique."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from cosmo.domain.checks import (
    MOMENT_RANGE,
    Check,
    changed,
    check_int,
    check_text,
    choice_error,
    field_problems,
    has_control,
    utc,
)
from cosmo.domain.errors import PermissionDenied, ValidationFailed
from cosmo.domain.ids import SNAPSHOT_EVERY, aggregate_id, unique_key_id

ROLES = ("superuser", "manager", "staff", "viewer", "auditor")
TASK_GROUPS = ("cleaning", "maintenance", "laundry", "lawn_pool", "general", "none")
ADMIN_ROLES = frozenset({"superuser", "manager"})
# What each issuing role may put on an invite code.
INVITABLE_ROLES = {"superuser": frozenset(ROLES), "manager": frozenset({"staff", "viewer"})}

INVITE_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # A-Z0-9 without look-alikes
INVITE_CODE_PATTERN = re.compile(r"[A-Z0-9]{8,64}")
USERNAME_PATTERN = re.compile(r"[\w.@+-]{1,150}")
EMAIL_PATTERN = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
NAME_MAX = 150
INVITE_NOTES_MAX = 500
MAX_INVITE_USES = 1_000_000  # 0 means unlimited
PASSWORD_MIN = 8
PASSWORD_MAX = 256


def check_role(value: str) -> list[str]:
    return [] if value in ROLES else [choice_error(value, ROLES)]


def check_task_group(value: str) -> list[str]:
    return [] if value in TASK_GROUPS else [choice_error(value, TASK_GROUPS)]


def check_username(value: str) -> list[str]:
    if not USERNAME_PATTERN.fullmatch(value):
        return ["Enter a valid username: up to 150 letters, digits and @/./+/-/_ characters."]
    return []


def check_email(value: str) -> list[str]:
    if len(value) > 254 or has_control(value) or not EMAIL_PATTERN.fullmatch(value):
        return ["Enter a valid email address."]
    return []


def check_name(value: str) -> list[str]:
    return check_text(value, NAME_MAX)


def registration_problems(fields: dict[str, Any], invited: bool = True) -> dict[str, list[str]]:
    """Problems with a new account's fields: username, email, password (and, `invited`, password_confirm and
    invite_code), first_name, last_name."""
    checks: dict[str, Check] = {
        "username": check_username,
        "email": lambda v: check_email(v) if (v or invited) else [],
        "first_name": check_name,
        "last_name": check_name,
    }
    problems = field_problems(fields, checks)
    password = check_password(fields["password"], fields.get("username", ""))
    if password:
        problems["password"] = password
    if invited:
        if fields["password"] != fields.get("password_confirm"):
            problems["password_confirm"] = ["Passwords do not match."]
        if not fields.get("invite_code", "").strip():
            problems["invite_code"] = ["This field is required."]
    return problems


def profile_problems(changes: dict[str, Any]) -> dict[str, list[str]]:
    """Problems with the changes a user makes to their own names and email."""
    checks: dict[str, Check] = {
        "first_name": check_name,
        "last_name": check_name,
        "email": lambda v: check_email(v.strip()),
    }
    return field_problems(changes, checks)


def access_problems(changes: dict[str, Any]) -> dict[str, list[str]]:
    return field_problems(changes, {"role": check_role, "task_group": check_task_group})


def invite_problems(fields: dict[str, Any], now: datetime) -> dict[str, list[str]]:
    """Problems with a new invite code's fields (role, task_group, max_uses, expires_at, notes)."""

    def check_expiry(value: datetime | None) -> list[str]:
        if value is None:
            return []
        moment = utc(value)
        if moment is None:
            return [MOMENT_RANGE]
        return [] if moment > now else ["Must be in the future."]

    checks: dict[str, Check] = {
        "role": check_role,
        "task_group": check_task_group,
        "max_uses": lambda v: check_int(v, 0, MAX_INVITE_USES),
        "expires_at": check_expiry,
        "notes": lambda v: check_text(v, INVITE_NOTES_MAX, multiline=True),
    }
    return field_problems(fields, checks)


def check_password(password: str, username: str = "") -> list[str]:
    problems = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"This password is too short. It must contain at least {PASSWORD_MIN} characters.")
    if len(password) > PASSWORD_MAX:
        problems.append(f"This password is too long. It must contain at most {PASSWORD_MAX} characters.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if username and password.lower() == username.lower():
        problems.append("The password is too similar to the username.")
    return problems


def check_can_issue(issuer_role: str, invite_role: str) -> None:
    if invite_role not in INVITABLE_ROLES.get(issuer_role, frozenset()):
        raise PermissionDenied(f"a {issuer_role} may not issue {invite_role} invite codes")


class User(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(user_id: int) -> UUID:
        return aggregate_id("user", user_id)

    @event("Registered")
    def __init__(
        self,
        user_id: int,
        username: str,
        email: str,
        password_hash: str,
        first_name: str,
        last_name: str,
        role: str,
        task_group: str,
        invite_code_id: int | None,
        actor_id: int | None,
    ):
        self.user_id = user_id
        self.username = username
        self.email = email
        self.password_hash = password_hash
        self.first_name = first_name
        self.last_name = last_name
        self.role = role
        self.task_group = task_group
        self.is_active = True

    def update_profile(self, changes: dict[str, str], actor_id: int) -> None:
        changes = changed(self, changes)
        if changes:
            self._profile_updated(changes, actor_id)

    @event("ProfileUpdated")
    def _profile_updated(self, changes: dict[str, str], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)

    @event("PasswordChanged")
    def change_password(self, password_hash: str, actor_id: int) -> None:
        self.password_hash = password_hash

    def change_access(self, changes: dict[str, Any], actor_id: int) -> None:
        if actor_id == self.user_id and (
            changes.get("is_active") is False or changes.get("role", self.role) != self.role
        ):
            raise ValidationFailed.one(
                "is_active" if "is_active" in changes else "role",
                "You cannot deactivate yourself or change your own role.",
            )
        changes = changed(self, changes)
        if changes:
            self._access_changed(changes, actor_id)

    @event("AccessChanged")
    def _access_changed(self, changes: dict[str, Any], actor_id: int) -> None:
        for key, value in changes.items():
            setattr(self, key, value)


class InviteCode(Aggregate):
    snapshot_every = SNAPSHOT_EVERY

    @staticmethod
    def create_id(invite_id: int) -> UUID:
        return aggregate_id("invite", invite_id)

    @event("Created")
    def __init__(
        self,
        invite_id: int,
        code: str,
        role: str,
        task_group: str,
        max_uses: int,
        expires_at: datetime | None,
        notes: str,
        created_by: int,
    ):
        self.invite_id = invite_id
        self.code = code
        self.role = role
        self.task_group = task_group
        self.max_uses = max_uses
        self.expires_at = expires_at
        self.notes = notes
        self.created_by = created_by
        self.used_count = 0
        self.is_active = True

    def problem(self, now: datetime) -> str | None:
        """Why this code cannot be used now, or None when it can."""
        if not self.is_active:
            return "This invite code has been revoked."
        if self.expires_at is not None and now >= self.expires_at:
            return "This invite code has expired."
        if self.max_uses and self.used_count >= self.max_uses:
            return "This invite code has reached its maximum number of uses."
        return None

    def use(self, user_id: int, now: datetime) -> None:
        problem = self.problem(now)
        if problem:
            raise ValidationFailed.one("invite_code", problem)
        self._used(user_id)

    @event("Used")
    def _used(self, user_id: int) -> None:
        self.used_count += 1

    def revoke(self, actor_id: int) -> None:
        if self.is_active:
            self._revoked(actor_id)

    @event("Revoked")
    def _revoked(self, actor_id: int) -> None:
        self.is_active = False


class UniqueKey(Aggregate):
    """Claims a value (a username, an email, an invite code) for one owner.

    Its id is derived from the value, so two commands claiming the same value collide on the event store's
    primary key: uniqueness is decided by the write, never by a check against a read model.
    """

    snapshot_every = SNAPSHOT_EVERY
    shallow_copies = True  # plain values only (see `storage.event_store.copy_of`)

    @staticmethod
    def create_id(scope: str, value: str) -> UUID:
        return unique_key_id(scope, value)

    @event("Claimed")
    def __init__(self, scope: str, value: str, owner_id: int):
        self.scope = scope
        self.value = value
        self.owner_id: int | None = owner_id

    @event("Released")
    def release(self) -> None:
        self.owner_id = None

    @event("Reclaimed")
    def reclaim(self, owner_id: int) -> None:
        self.owner_id = owner_id


def normalise_key(value: str) -> str:
    return value.strip().lower()
