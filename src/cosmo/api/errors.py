"""The contract's error shapes, for every error the app or Litestar can raise. Never a traceback."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    InternalServerException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from cosmo.domain.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cosmo.media.images import DecodeBusy

log = logging.getLogger("cosmo.api")

REQUIRED = re.compile(r"missing required field `([^`]+)`")


class Throttled(HTTPException):
    status_code = 429

    def __init__(self, wait: int):
        super().__init__(detail=f"Request was throttled. Expected available in {wait} seconds.")
        self.wait = wait


class NotSettled(HTTPException):
    """The write is stored but the read models did not catch up in time."""

    status_code = 503


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(body, status_code=status, headers=headers)


def validation_body(details: dict[str, list[str]]) -> dict[str, Any]:
    return {"error": "Validation failed", "details": details}


def _from_litestar_validation(exc: ValidationException) -> dict[str, list[str]]:
    details: dict[str, list[str]] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        message = str(item.get("message", "Invalid value."))
        key = str(item.get("key") or "non_field_errors")
        if key == "data":
            missing = REQUIRED.search(message)
            if missing:
                key, message = missing.group(1), "This field is required."
            elif message == "'data'":
                key, message = "non_field_errors", "A JSON request body is required."
            else:
                key = "non_field_errors"
        details.setdefault(key, []).append(message)
    return details or {"non_field_errors": [str(exc.detail)]}


CLIENT_GONE = "client disconnected prematurely"  # Litestar's message when the request body stream ends early


CHAT_PATH = "/api/chat/"
# The chat contract's clients read `error` (short) and `detail` (a description) from every error.
SHORT = {
    400: "Validation failed",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    429: "Throttled",
    503: "Unavailable",
}


def _for_chat(response: Response[Any]) -> Response[Any]:
    body = dict(response.content)
    body.setdefault("error", SHORT.get(response.status_code, "Error"))
    if "detail" not in body:
        details = body.get("details") or {}
        first = next(iter(details.items()), None)
        body["detail"] = f"{first[0]}: {first[1][0]}" if first and first[1] else body["error"]
    response.content = body
    return response


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    response = _contract_error(request, exc)
    return _for_chat(response) if request.url.path.startswith(CHAT_PATH) else response


def _contract_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, ValidationFailed):
        return _json(validation_body(exc.details), 400)
    if isinstance(exc, NotFound | NotFoundException):
        return _json({"detail": "Not found."}, 404)
    if isinstance(exc, PermissionDenied | PermissionDeniedException):
        return _json({"error": "Permission denied"}, 403)
    if isinstance(exc, Conflict):
        return _json({"error": "Conflict", "detail": str(exc), **exc.extra}, 409)
    if isinstance(exc, Throttled):
        return _json({"detail": exc.detail}, 429, {"Retry-After": str(exc.wait)})
    if isinstance(exc, NotSettled):
        return _json({"detail": exc.detail}, 503, {"Retry-After": "1"})
    if isinstance(exc, DecodeBusy):
        return _json({"detail": str(exc)}, 503, {"Retry-After": "5"})
    if isinstance(exc, NotAuthorizedException):
        return _json({"detail": exc.detail}, 401, {"WWW-Authenticate": 'Bearer realm="api"'})
    if isinstance(exc, ValidationException):
        return _json(validation_body(_from_litestar_validation(exc)), 400)
    if isinstance(exc, MethodNotAllowedException):
        allow = {k: v for k, v in (exc.headers or {}).items() if k.lower() == "allow"}
        return _json({"detail": f'Method "{request.method}" not allowed.'}, 405, allow)
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return _json({"detail": "Request body is too large."}, 413)
    if isinstance(exc, ClientException) and exc.status_code == 400:
        return _json(validation_body({"non_field_errors": [str(exc.detail)]}), 400)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _json({"detail": exc.detail}, exc.status_code)
    if isinstance(exc, InternalServerException) and exc.detail == CLIENT_GONE:
        # The client hung up while sending its body: nothing is wrong here, and nobody will read the answer.
        log.info("client disconnected during %s %s", request.method, request.url.path)
        return _json({"detail": "Client disconnected."}, 400)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(
        {"error": "Internal server error", "detail": "An unexpected error occurred."},
        HTTP_500_INTERNAL_SERVER_ERROR,
    )
