"""Errors a command can be refused with. The API maps them to the contract's error shapes."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class DomainError(Exception):
    """Base class: a command that the rules refuse."""


class ValidationFailed(DomainError):
    """400: `details` maps field names to messages."""

    def __init__(self, details: dict[str, list[str]]):
        super().__init__(details)
        self.details = details

    @classmethod
    def one(cls, field: str, message: str) -> ValidationFailed:
        return cls({field: [message]})


class NotFound(DomainError):
    """404."""


class PermissionDenied(DomainError):
    """403."""


class Conflict(DomainError):
    """409: a concurrent write got there first and the command is not safe to retry blindly, or the state of
    another object forbids it (`extra`: more keys for the body, such as the id of that object)."""

    extra: Mapping[str, Any] = MappingProxyType({})
