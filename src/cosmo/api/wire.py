"""Request bodies (msgspec Structs, which Litestar decodes and documents) and response shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from cosmo.domain.errors import ValidationFailed


class TokenRequest(msgspec.Struct):
    username: str
    password: str


class RefreshRequest(msgspec.Struct):
    refresh: str


class RegisterRequest(msgspec.Struct):
    username: str
    email: str
    password: str
    password_confirm: str
    invite_code: str
    first_name: str = ""
    last_name: str = ""


class ValidateInviteRequest(msgspec.Struct):
    code: str


class CreateInviteRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    task_group: str
    max_uses: int = 1
    expires_at: datetime | None = None
    notes: str = ""


class UpdateMeRequest(msgspec.Struct, forbid_unknown_fields=True):
    first_name: str | UnsetType = UNSET
    last_name: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    old_password: str | UnsetType = UNSET
    new_password: str | UnsetType = UNSET


class UpdateUserRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: str | UnsetType = UNSET
    task_group: str | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


def given(struct: msgspec.Struct, *names: str) -> dict[str, Any]:
    """The fields a PATCH body actually carried."""
    return {n: getattr(struct, n) for n in names if getattr(struct, n) is not UNSET}


class Problems:
    """Collects field problems so a 400 lists all of them at once."""

    def __init__(self) -> None:
        self.details: dict[str, list[str]] = {}

    def add(self, field: str, messages: list[str] | str) -> None:
        if isinstance(messages, str):
            messages = [messages]
        if messages:
            self.details.setdefault(field, []).extend(messages)

    def raise_any(self) -> None:
        if self.details:
            raise ValidationFailed(self.details)


def user_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "email": row["email"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "is_active": bool(row["is_active"]),
        "profile": {"role": row["role"], "task_group": row["task_group"]},
    }


def invite_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "code": row["code"],
        "task_group": row["task_group"],
        "role": row["role"],
        "max_uses": row["max_uses"],
        "used_count": row["used_count"],
        "expires_at": row["expires_at"],
        "is_active": bool(row["is_active"]),
        "notes": row["notes"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
    }
