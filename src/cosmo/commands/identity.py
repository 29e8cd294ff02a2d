"""Identity commands: registration, users, invite codes."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
from msgspec import UNSET, UnsetType

from cosmo.auth.passwords import hash_password, verify_password
from cosmo.commands.base import Commands, Outcome, Session
from cosmo.domain.actors import SYSTEM, Actor, require_admin, require_superuser
from cosmo.domain.checks import utc
from cosmo.domain.errors import NotFound, ValidationFailed
from cosmo.domain.identity import (
    INVITE_CODE_ALPHABET,
    InviteCode,
    UniqueKey,
    User,
    access_problems,
    check_can_issue,
    check_password,
    invite_problems,
    normalise_key,
    profile_problems,
    registration_problems,
)
from cosmo.domain.ids import aggregate_id, unique_key_id
from cosmo.storage.event_store import EventStore
from cosmo.storage.ids import IdAllocator

TAKEN = {
    "username": "A user with that username already exists.",
    "email": "A user with that email already exists.",
}


class InviteCheck(msgspec.Struct, omit_defaults=True):
    """Whether an invite code can be used now: with what it grants, or why not."""

    valid: bool
    error: str | UnsetType = UNSET
    task_group: str | UnsetType = UNSET
    role: str | UnsetType = UNSET
    expires_at: datetime | UnsetType | None = UNSET


class IdentityCommands(Commands):
    def __init__(self, store: EventStore, ids: IdAllocator, password_cost: str = "standard"):  # noqa: S107
        super().__init__(store, ids)
        self.password_cost = password_cost

    async def _hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(hash_password, password, self.password_cost)

    # -- users -------------------------------------------------------------------------------------------------

    async def register(self, fields: dict[str, Any]) -> Outcome[int]:
        """Public: a new user with an invite code, which decides the role and task group. `fields`: username,
        email, password, password_confirm, invite_code, first_name, last_name."""
        problems = registration_problems(fields)
        if problems:
            raise ValidationFailed(problems)
        return await self._create_user(
            fields["username"],
            fields["email"],
            fields["password"],
            fields.get("first_name", ""),
            fields.get("last_name", ""),
            role="",
            task_group="",
            actor_id=None,
            invite_code=fields["invite_code"].strip(),
        )

    async def create_user(
        self,
        actor: Actor,
        *,
        username: str,
        email: str,
        password: str,
        role: str,
        task_group: str,
        first_name: str = "",
        last_name: str = "",
    ) -> Outcome[int]:
        """A user with a given role, without an invite (the operator's `cosmo createsuperuser`, or a superuser)."""
        require_superuser(actor)
        fields = {"username": username, "email": email, "password": password, "first_name": first_name}
        problems = {
            **registration_problems(fields, invited=False),
            **access_problems({"role": role, "task_group": task_group}),
        }
        if problems:
            raise ValidationFailed(problems)
        actor_id = None if actor is SYSTEM else actor.id
        return await self._create_user(
            username, email, password, first_name, last_name, role=role, task_group=task_group, actor_id=actor_id
        )

    async def _create_user(
        self,
        username: str,
        email: str,
        password: str,
        first_name: str,
        last_name: str,
        *,
        role: str,
        task_group: str,
        actor_id: int | None,
        invite_code: str | None = None,
    ) -> Outcome[int]:
        """With an invite code, its use and the new user are one atomic save."""
        password_hash = await self._hash(password)
        user_id = await self.ids.next("user")

        async def decide(s: Session) -> int:
            invite = None
            new_role, new_group = role, task_group
            if invite_code is not None:
                invite = await _invite_by_code(s, invite_code)
                if invite is None:
                    raise ValidationFailed.one("invite_code", "Invalid invite code.")
                invite.use(user_id, datetime.now(UTC))
                new_role, new_group = invite.role, invite.task_group
            await s.claim("username", username, user_id, "username", TAKEN["username"])
            if email:
                await s.claim("email", email, user_id, "email", TAKEN["email"])
            await _claim_login_names(s, user_id, {"username": username, "email": email})
            s.add(
                User(
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
            )
            return user_id

        return await self.execute(decide, retry=True)

    async def update_me(
        self, actor: Actor, changes: dict[str, str], old_password: str | None, new_password: str | None
    ) -> Outcome[None]:
        """Names and email, and the password when both passwords are given: all of it in one save, or none of it
        (a wrong old password refuses the whole request)."""
        problems = profile_problems(changes)
        if (old_password is None) != (new_password is None):
            missing = "old_password" if new_password is not None else "new_password"
            problems[missing] = ["This field is required to change the password."]
        if problems:
            raise ValidationFailed(problems)
        if "email" in changes:
            changes = {**changes, "email": changes["email"].strip()}
        password_hash = None
        if new_password is not None:
            stored = await self._user_for(actor)
            ok = await anyio.to_thread.run_sync(verify_password, old_password or "", stored.password_hash)
            if not ok:
                raise ValidationFailed.one("old_password", "Your old password was entered incorrectly.")
            problems = check_password(new_password, stored.username)
            if problems:
                raise ValidationFailed({"new_password": problems})
            password_hash = await self._hash(new_password)

        async def decide(s: Session) -> None:
            user = await _user(s, actor.id)
            new_email = changes.get("email")
            if new_email is not None and normalise_key(new_email) != normalise_key(user.email):
                if new_email:
                    await s.claim("email", new_email, user.user_id, "email", TAKEN["email"])
                    await _claim_login_names(s, user.user_id, {"email": new_email})
                if user.email:
                    await s.release("email", user.email, user.user_id)
                    if normalise_key(user.email) != normalise_key(user.username):  # still the username's
                        await s.release("login", user.email, user.user_id)
            user.update_profile(changes, actor_id=user.user_id)
            if password_hash is not None:
                user.change_password(password_hash, actor_id=user.user_id)

        return await self.execute(decide, retry=True)

    async def _user_for(self, actor: Actor) -> User:
        user, _ = await self.store.get(aggregate_id("user", actor.id), fresh=True)
        if not isinstance(user, User):
            raise NotFound(f"user {actor.id}")
        return user

    async def change_access(self, actor: Actor, user_id: int, changes: dict[str, Any]) -> Outcome[None]:
        """Role, task group and the active flag: superusers only."""
        require_superuser(actor)
        problems = access_problems(changes)
        if problems:
            raise ValidationFailed(problems)

        async def decide(s: Session) -> None:
            user = await _user(s, user_id)
            user.change_access(changes, actor_id=actor.id)

        return await self.execute(decide, retry=True)

    # -- invite codes --------------------------------------------------------------------------------------------

    async def create_invite(self, actor: Actor, fields: dict[str, Any]) -> Outcome[int]:
        """`fields`: role, task_group, max_uses (0: unlimited), expires_at, notes."""
        require_admin(actor.role)
        fields = {"max_uses": 1, "expires_at": None, "notes": "", **fields}
        problems = invite_problems(fields, datetime.now(UTC))
        if problems:
            raise ValidationFailed(problems)
        check_can_issue(actor.role, fields["role"])
        expires_at = utc(fields["expires_at"]) if fields["expires_at"] is not None else None
        invite_id = await self.ids.next("invite")

        async def decide(s: Session) -> int:
            # A generated code that collides with an existing one is refused by its key: draw again.
            for _ in range(5):
                code = "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(10))
                try:
                    await s.claim("invite-code", code, invite_id, "code", "collision")
                except ValidationFailed:
                    continue
                s.add(
                    InviteCode(
                        invite_id=invite_id,
                        code=code,
                        role=fields["role"],
                        task_group=fields["task_group"],
                        max_uses=fields["max_uses"],
                        expires_at=expires_at,
                        notes=fields["notes"],
                        created_by=actor.id,
                    )
                )
                return invite_id
            raise ValidationFailed.one("code", "Could not draw an unused code; try again.")

        return await self.execute(decide, retry=True)

    async def revoke_invite(self, actor: Actor, invite_id: int) -> Outcome[None]:
        require_admin(actor.role)

        async def decide(s: Session) -> None:
            invite = await s.get(aggregate_id("invite", invite_id), InviteCode)
            if invite is None:
                raise NotFound(f"invite {invite_id}")
            check_can_issue(actor.role, invite.role)
            invite.revoke(actor.id)

        return await self.execute(decide, retry=True)

    async def check_invite(self, code: str) -> InviteCheck:
        """Public, and changes nothing: whether `code` can be used to register now."""
        code = code.strip()
        invite = await _invite_by_code(Session(self.store, True, None), code) if 0 < len(code) <= 64 else None
        if invite is None:
            return InviteCheck(valid=False, error="Invalid invite code.")
        problem = invite.problem(datetime.now(UTC))
        if problem:
            return InviteCheck(valid=False, error=problem)
        return InviteCheck(valid=True, task_group=invite.task_group, role=invite.role, expires_at=invite.expires_at)


async def _user(s: Session, user_id: int) -> User:
    user = await s.get(aggregate_id("user", user_id), User)
    if user is None:
        raise NotFound(f"user {user_id}")
    return user


async def _invite_by_code(s: Session, code: str) -> InviteCode | None:
    key = await s.get(unique_key_id("invite-code", normalise_key(code)), UniqueKey)
    if key is None or key.owner_id is None:
        return None
    return await s.get(aggregate_id("invite", key.owner_id), InviteCode)


async def _claim_login_names(s: Session, user_id: int, names: dict[str, str]) -> None:
    """Usernames and emails are both accepted as the login name, so one value may name one user only: each distinct
    value is claimed in the shared "login" scope (two users racing for it collide on that key), and checked against
    the other field's keys of users registered before that scope existed."""
    claimed: set[str] = set()
    for field, value in names.items():
        if not value or normalise_key(value) in claimed:
            continue
        other = "email" if field == "username" else "username"
        holder = await s.get(unique_key_id(other, normalise_key(value)), UniqueKey)
        if holder is not None and holder.owner_id not in (None, user_id):
            raise ValidationFailed.one(field, TAKEN[field])
        await s.claim("login", value, user_id, field, TAKEN[field])
        claimed.add(normalise_key(value))
