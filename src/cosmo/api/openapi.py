"""The OpenAPI document, told the truth about what Litestar cannot know: the contract's error bodies and when each
status can answer, the trailing slash every path has, and the request bodies that refuse unknown fields.

Litestar builds the document from the handlers (bodies, parameters, 2xx responses); `refine` then rewrites it once,
the first time it is served.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.routes import HTTPRoute

METHODS = ("get", "post", "put", "patch", "delete")
# Public endpoints that write through a command (so may wait for read-your-writes).
PUBLIC_COMMANDS = {("/api/register/", "post")}
# Public endpoints without a rate limit.
UNTHROTTLED = {"/api/health/", "/api/health/ready/"}

ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ValidationError": {
        "type": "object",
        "description": "A 400: every field with a problem, and its messages (`non_field_errors` for the body).",
        "properties": {
            "error": {"type": "string", "const": "Validation failed"},
            "details": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
        "required": ["error", "details"],
    },
    "Detail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "PermissionDenied": {
        "type": "object",
        "properties": {"error": {"type": "string", "const": "Permission denied"}},
        "required": ["error"],
    },
    "ConflictError": {
        "type": "object",
        "properties": {"error": {"type": "string", "const": "Conflict"}, "detail": {"type": "string"}},
        "required": ["error", "detail"],
    },
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "string"}}}


def _error(description: str, schema: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(path: str, method: str, operation: dict[str, Any], public: bool) -> dict[str, dict[str, Any]]:
    """The error statuses an operation can answer with, by the rules the app follows."""
    has_params = "{" in path or any(p.get("name") == "page" for p in operation.get("parameters", []))
    # A chat room the caller is not in is a 404 wherever it is named, in a body as much as in a path.
    has_params = has_params or path.startswith("/api/chat/")
    writes = method != "get"
    out = {"400": _error("Bad input: see `details`.", "ValidationError")}
    if not public or path.startswith("/api/token"):
        out["401"] = _error("No valid access token (or, for the token endpoints, bad credentials).", "Detail")
    if not public:
        out["403"] = _error("Not allowed for this user's role or for this object.", "PermissionDenied")
    if has_params:
        out["404"] = _error("No such object (or one this user may not see), or a page past the end.", "Detail")
    if writes and (not public or (path, method) in PUBLIC_COMMANDS):
        out["409"] = _error("Another request changed the object first: reload it and try again.", "ConflictError")
        out["503"] = _error(
            "Saved, but not readable yet (or the server is busy decoding images): retry shortly.", "Detail", RETRY_AFTER
        )
    if "requestBody" in operation:
        out["413"] = _error("The request body is too large.", "Detail")
    if path not in UNTHROTTLED:
        out["429"] = _error("Too many requests: see Retry-After.", "Detail", RETRY_AFTER)
    return out


def _structs(annotation: Any) -> Iterator[type[msgspec.Struct]]:
    """The msgspec Structs a (body) annotation holds, nested ones included."""
    seen: set[type] = set()
    todo = [annotation]
    while todo:
        tp = todo.pop()
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            if tp in seen:
                continue
            seen.add(tp)
            yield tp
            todo.extend(typing.get_type_hints(tp, include_extras=True).values())
        else:
            todo.extend(typing.get_args(tp))


def refine(app: Litestar, schema: dict[str, Any]) -> None:
    routes = [r for r in app.routes if isinstance(r, HTTPRoute)]
    public: set[tuple[str, str]] = set()
    strict: set[str] = set()
    # Bodies a handler decodes itself (one endpoint taking JSON or multipart), declared in its `opt`.
    bodies: dict[tuple[str, str], dict[str, Any]] = {}
    # Answers a handler streams itself (JSON Lines), declared in its `opt` as the 200's content.
    answers: dict[tuple[str, str], dict[str, Any]] = {}
    for route in routes:
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if handler.opt.get("public"):
                    public.add((route.path_format.rstrip("/") + "/", method.lower()))
                if "request_body" in handler.opt:
                    bodies[(route.path_format.rstrip("/") + "/", method.lower())] = handler.opt["request_body"]
                if "response_content" in handler.opt:
                    answers[(route.path_format.rstrip("/") + "/", method.lower())] = handler.opt["response_content"]
            body = handler.parsed_fn_signature.parameters.get("data")
            if body is not None:
                strict |= {s.__name__ for s in _structs(body.annotation) if s.__struct_config__.forbid_unknown_fields}
    schema["paths"] = {path.rstrip("/") + "/": item for path, item in schema.get("paths", {}).items()}
    for path, item in schema["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if (path, method) in bodies:
                operation["requestBody"] = bodies[(path, method)]
            if (path, method) in answers:
                operation.setdefault("responses", {}).setdefault("200", {"description": "OK"})
                operation["responses"]["200"]["content"] = answers[(path, method)]
            is_public = (path, method) in public
            if is_public:
                operation["security"] = []  # no token needed (the document's default asks for one)
            responses = operation.setdefault("responses", {})
            for status, response in _errors(path, method, operation, is_public).items():
                if status == "400" or status not in responses:
                    responses[status] = response
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(ERROR_SCHEMAS)
    for name in strict:
        if name in components:
            components[name]["additionalProperties"] = False


class RefinedOpenAPIPlugin(OpenAPIPlugin):
    __slots__ = ()

    def provide_openapi_schema(self) -> dict[str, Any]:
        fresh = self._openapi_schema is None
        schema = super().provide_openapi_schema()
        if fresh:
            refine(self.app, schema)
        return schema


def install(app: Litestar) -> None:
    """Refine the document when it is first served. Litestar creates its OpenAPI plugin itself and offers no hook
    after building the document, so the plugin's class is swapped for one that adds the step (same slots)."""
    app.plugins.get(OpenAPIPlugin).__class__ = RefinedOpenAPIPlugin
