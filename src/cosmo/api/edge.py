"""What every request passes before a handler sees it: body decoding that fails as a 400 rather than a 500, path ids
that no object can have, and the security headers every response carries."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from cosmo.domain.checks import MAX_INT, MIN_INT
from cosmo.domain.errors import ValidationFailed


class CosmoRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        # msgspec reports bytes that are not UTF-8 as UnicodeDecodeError and JSON nested past the interpreter's
        # recursion limit as RecursionError; neither is a msgspec.DecodeError, which Litestar turns into a 400.
        try:
            return await super().json()
        except UnicodeDecodeError:
            raise ValidationFailed.one("non_field_errors", "The request body is not valid UTF-8.") from None
        except RecursionError:
            raise ValidationFailed.one("non_field_errors", "The JSON body is nested too deeply.") from None


def bounded_path_ids(app: ASGIApp) -> ASGIApp:
    """An integer path parameter beyond 64 bits names nothing that can exist: 404, before any database sees it. So
    does one not written in plain ASCII digits: Litestar's parser also takes `+1`, `01` and other scripts' digits
    (Arabic-Indic, fullwidth), which would let one object answer to many paths."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        segments: list[str] | None = None
        for value in scope.get("path_params", {}).values():
            if type(value) is int:
                if not MIN_INT <= value <= MAX_INT:
                    raise NotFoundException()
                segments = segments if segments is not None else scope.get("path", "").split("/")
                if str(value) not in segments:
                    raise NotFoundException()
        await app(scope, receive, send)

    return middleware


async def security_headers(message: Message, scope: Scope) -> None:
    """On every HTTP response, errors included: browsers must not guess a content type other than the one sent."""
    if message["type"] == "http.response.start":
        MutableScopeHeaders.from_message(message)["X-Content-Type-Options"] = "nosniff"


_TOKEN_IN_QUERY = re.compile(r"((?:^|[?&])(?:token|access|refresh)=)[^&\s]*", re.IGNORECASE)


class RedactTokens(logging.Filter):
    """uvicorn logs each request's whole query string (HTTP on `uvicorn.access`, WebSocket handshakes on
    `uvicorn.error`), and WebSocket clients send their token in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "=" in a for a in record.args):
            record.args = tuple(
                _TOKEN_IN_QUERY.sub(r"\1[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def redact_access_log() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
