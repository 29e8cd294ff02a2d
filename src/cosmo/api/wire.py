"""Shared wire types: field annotations that put the domain's rules into the OpenAPI document (choices, lengths),
the identity endpoints' bodies, and small response bodies. Each resource's own bodies live in its controller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from cosmo.domain.checks import MAX_INT
from cosmo.domain.identity import INVITE_NOTES_MAX, MAX_INVITE_USES, NAME_MAX, ROLES, TASK_GROUPS

# The rules themselves are the domain's (domain/checks.py and each aggregate's module), checked by the commands so
# that one 400 lists every bad field in the contract's words; these only document them.


def documented(kind: Any, **schema: Any) -> Any:
    return Annotated[kind, Meta(extra_json_schema={"extra": schema})]


def one_of(values: Sequence[str]) -> Any:
    """A string the domain checks against `values`: documented as an enum."""
    return documented(str, enum=list(values))


def text(max_length: int) -> Any:
    return documented(str, max_length=max_length)


def count(low: int, high: int) -> Any:
    return documented(int, minimum=low, maximum=high)


Id = documented(int, minimum=1, maximum=MAX_INT)


def given(struct: msgspec.Struct, *names: str) -> dict[str, Any]:
    """The fields a PATCH body actually carried."""
    return {n: getattr(struct, n) for n in names if getattr(struct, n) is not UNSET}


class TokenRequest(msgspec.Struct):
    username: str
    password: str


class TokenPair(msgspec.Struct):
    access: str
    refresh: str


class RefreshRequest(msgspec.Struct):
    refresh: str


class Detail(msgspec.Struct):
    detail: str


class RegisterRequest(msgspec.Struct):
    username: text(150)
    email: text(254)
    password: str
    password_confirm: str
    invite_code: str
    first_name: text(NAME_MAX) = ""
    last_name: text(NAME_MAX) = ""


class ValidateInviteRequest(msgspec.Struct):
    code: str


class CreateInviteRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: one_of(ROLES)
    task_group: one_of(TASK_GROUPS)
    max_uses: count(0, MAX_INVITE_USES) = 1  # 0: unlimited
    expires_at: datetime | None = None
    notes: text(INVITE_NOTES_MAX) = ""


class UpdateMeRequest(msgspec.Struct, forbid_unknown_fields=True):
    first_name: text(NAME_MAX) | UnsetType = UNSET
    last_name: text(NAME_MAX) | UnsetType = UNSET
    email: text(254) | UnsetType = UNSET
    old_password: str | UnsetType = UNSET
    new_password: str | UnsetType = UNSET


class UpdateUserRequest(msgspec.Struct, forbid_unknown_fields=True):
    role: one_of(ROLES) | UnsetType = UNSET
    task_group: one_of(TASK_GROUPS) | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
