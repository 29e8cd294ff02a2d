"""The event-sourced application, its storage settings, and the identity commands (users, invite codes)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteDatastore

from cosmo.auth.passwords import hash_password, verify_password
from cosmo.commands.base import CommandHandler
from cosmo.config import Settings
from cosmo.domain.checks import utc
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import (
    INVITE_CODE_ALPHABET,
    InviteCode,
    UniqueKey,
    User,
    check_can_issue,
    check_password,
    invite_problems,
    normalise_key,
)
from cosmo.domain.ids import aggregate_id, unique_key_id
from cosmo.storage.ids import IdAllocator

TAKEN = {
    "username": "A user with that username already exists.",
    "email": "A user with that email already exists.",
}
SQLITE_WAIT = 30  # seconds a save may queue for SQLite's one writer (as SQLITE_LOCK_TIMEOUT below)


class CosmoApp(Application):
    name = "Cosmo"

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        # eventsourcing has no setting for how long a save waits for the SQLite writer connection (5 s): a burst
        # of writers on a slow disk waits longer than that, and must queue rather than fail.
        datastore = getattr(self.recorder, "datastore", None)
        if isinstance(datastore, SQLiteDatastore):
            datastore.pool.pool_timeout = SQLITE_WAIT


def library_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's own settings, derived from ours."""
    db = settings.database
    if db.is_postgres:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": db.dbname,
            "POSTGRES_HOST": db.host,
            "POSTGRES_PORT": str(db.port),
            "POSTGRES_USER": db.user or "postgres",
            "POSTGRES_PASSWORD": db.password,
            "POSTGRES_POOL_SIZE": "5",
            "POSTGRES_MAX_OVERFLOW": "5",
            "APPLICATION_RECORDER_TOPIC": "cosmo.storage.event_store:GroupCommitRecorder",
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": db.path,
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_WAIT),
    }


def events_channel(app: Application) -> str:
    return f"{app.name.lower()}_events"


class Commands(CommandHandler):
    """Identity commands: users and invite codes."""

    def __init__(self, app: Application, ids: IdAllocator, password_cost: str = "standard"):  # noqa: S107
        super().__init__(app, ids)
        self.password_cost = password_cost

    def hash(self, password: str) -> str:
        return hash_password(password, self.password_cost)

    # -- users -------------------------------------------------------------------------------------------------

    def create_user(
        self,
        *,
        username: str,
        email: str,
        password: str,
        first_name: str = "",
        last_name: str = "",
        role: str,
        task_group: str,
        actor_id: int | None = None,
        invite_code: str | None = None,
    ) -> tuple[int, int]:
        """Returns (user id, position). With an invite code, its use and the new user are one atomic save."""
        password_hash = self.hash(password)
        user_id = self.ids.next("user")

        def decide() -> tuple[int, int]:
            invite = None
            new_role, new_group = role, task_group
            if invite_code is not None:
                invite = self._invite_by_code(invite_code)
                if invite is None:
                    raise ValidationFailed.one("invite_code", "Invalid invite code.")
                invite.use(user_id, datetime.now(UTC))
                new_role, new_group = invite.role, invite.task_group
            keys = [self._claim("username", username, user_id, "username", TAKEN["username"])]
            if email:
                keys.append(self._claim("email", email, user_id, "email", TAKEN["email"]))
            keys += self._login_names(user_id, {"username": username, "email": email})
            user = User(
                user_id=user_id,
                username=username,
                email=email,
                password_hash=password_hash,
                first_name=first_name,
                last_name=last_name,
                role=new_role,
                task_group=new_group,
                invite_code_id=invite.invite_id if invite else None,
                actor_id=actor_id,
            )
            return user_id, self._save(user, *keys, invite)

        return self._retrying(decide)

    def _user(self, user_id: int) -> User:
        user = self._find(aggregate_id("user", user_id), User)
        if user is None:
            raise NotFound(f"user {user_id}")
        return user

    def _login_names(self, user_id: int, names: dict[str, str]) -> list[UniqueKey]:
        """Usernames and emails are both accepted as the login name, so one value may name one user only: each
        distinct value is claimed in the shared "login" scope (two users racing for it collide on that key), and
        checked against the other field's keys of users registered before that scope existed."""
        keys: list[UniqueKey] = []
        for field, value in names.items():
            if not value or any(normalise_key(value) == k.value for k in keys):
                continue
            other = "email" if field == "username" else "username"
            holder = self._find(unique_key_id(other, normalise_key(value)), UniqueKey)
            if holder is not None and holder.owner_id not in (None, user_id):
                raise ValidationFailed.one(field, TAKEN[field])
            keys.append(self._claim("login", value, user_id, field, TAKEN[field]))
        return keys

    def update_profile(
        self, user_id: int, changes: dict[str, str], old_password: str | None = None, new_password: str | None = None
    ) -> int:
        """Names and email, and the password when both passwords are given: all of it in one save, or none of it
        (a wrong old password refuses the whole request)."""
        password_hash = None
        if new_password is not None:
            user = self._user(user_id)
            if not verify_password(old_password or "", user.password_hash):
                raise ValidationFailed.one("old_password", "Your old password was entered incorrectly.")
            problems = check_password(new_password, user.username)
            if problems:
                raise ValidationFailed({"new_password": problems})
            password_hash = self.hash(new_password)

        def decide() -> int:
            user = self._user(user_id)
            keys: list[UniqueKey | None] = []
            new_email = changes.get("email")
            if new_email is not None and normalise_key(new_email) != normalise_key(user.email):
                if new_email:
                    keys.append(self._claim("email", new_email, user_id, "email", TAKEN["email"]))
                    keys += self._login_names(user_id, {"email": new_email})
                if user.email:
                    keys.append(self._release("email", user.email, user_id))
                    if normalise_key(user.email) != normalise_key(user.username):  # still the username's
                        keys.append(self._release("login", user.email, user_id))
            user.update_profile(changes, actor_id=user_id)
            if password_hash is not None:
                user.change_password(password_hash, actor_id=user_id)
            return self._save(user, *keys)

        return self._retrying(decide)

    def set_password(self, user_id: int, new_password: str, actor_id: int | None = None) -> int:
        password_hash = self.hash(new_password)

        def decide() -> int:
            user = self._user(user_id)
            user.change_password(password_hash, actor_id=actor_id or user_id)
            return self._save(user)

        return self._retrying(decide)

    def change_access(self, actor_id: int, user_id: int, changes: dict[str, Any]) -> int:
        def decide() -> int:
            user = self._user(user_id)
            user.change_access(changes, actor_id=actor_id)
            return self._save(user)

        return self._retrying(decide)

    # -- invite codes --------------------------------------------------------------------------------------------

    def _invite_by_code(self, code: str) -> InviteCode | None:
        key = self._find(unique_key_id("invite-code", normalise_key(code)), UniqueKey)
        if key is None or key.owner_id is None:
            return None
        return self._find(aggregate_id("invite", key.owner_id), InviteCode)

    def create_invite(
        self,
        *,
        actor_id: int,
        actor_role: str,
        role: str,
        task_group: str,
        max_uses: int,
        expires_at: datetime | None,
        notes: str,
    ) -> tuple[int, int]:
        fields = {"role": role, "task_group": task_group, "max_uses": max_uses, "expires_at": expires_at}
        problems = invite_problems({**fields, "notes": notes}, datetime.now(UTC))
        if problems:
            raise ValidationFailed(problems)
        check_can_issue(actor_role, role)
        expires_at = utc(expires_at) if expires_at is not None else None
        invite_id = self.ids.next("invite")

        def decide() -> tuple[int, int]:
            code = "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(10))
            key = self._claim("invite-code", code, invite_id, "code", "collision")
            invite = InviteCode(
                invite_id=invite_id,
                code=code,
                role=role,
                task_group=task_group,
                max_uses=max_uses,
                expires_at=expires_at,
                notes=notes,
                created_by=actor_id,
            )
            return invite_id, self._save(invite, key)

        try:
            return self._retrying(decide)
        except ValidationFailed:  # a generated code collided with an existing one: draw again
            return self._retrying(decide)

    def revoke_invite(self, actor_id: int, actor_role: str, invite_id: int) -> int:
        def decide() -> int:
            invite = self._find(aggregate_id("invite", invite_id), InviteCode)
            if invite is None:
                raise NotFound(f"invite {invite_id}")
            check_can_issue(actor_role, invite.role)
            invite.revoke(actor_id)
            return self._save(invite)

        return self._retrying(decide)

    def validate_invite(self, code: str) -> dict[str, Any]:
        invite = self._invite_by_code(code) if code else None
        if invite is None:
            return {"valid": False, "error": "Invalid invite code."}
        problem = invite.problem(datetime.now(UTC))
        if problem:
            return {"valid": False, "error": problem}
        return {
            "valid": True,
            "task_group": invite.task_group,
            "role": invite.role,
            "expires_at": invite.expires_at,
        }
