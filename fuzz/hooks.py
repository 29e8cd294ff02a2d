"""Schemathesis hooks that let the fuzzer past the first validation layer (loaded by fuzz/api.py unless --no-hints).

The served OpenAPI document declares the bodies, the query parameters (with their enums and patterns) and the upload
form; what it cannot say is which values the seeded server holds, which strings are valid where the document only
says "string", and how to make a real image. These hooks only add that, and never replace or relax a constraint the
document has (where it declares an `enum`, a `pattern` or a `format`, they step aside):

- `before_load_schema`: an `enum` of the valid values (taken from Cosmo's domain) on choice fields that are plain
  strings in a request body or query parameter (`photo_type` of the upload form, `timezone`, ...). Schemas that
  also describe a response are never touched, so the conformance checks see the document's own response schemas.
  Outside conformance mode (`FUZZ_CONFORMANCE` unset) it also adds the signed media route (`/media/{name}`), which
  the document leaves out on purpose.
- `flatmap_path_parameters` / `flatmap_body`: each generated case also has a variant whose ids (path ids, and
  `property`, `unit`, `assigned_to`, ... in bodies and forms) are 1-3, the ids the harness seeded, and whose
  uploaded `image` is a small real JPEG, PNG or WebP. Both variants are generated: the original keeps the odd values.
  The public endpoints get a variant the server accepts, from what the harness seeded (`FUZZ_SEEDED`): the
  superuser's login, a refresh token each for refresh and revoke, a registration with an invite code that has uses
  left.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

SEEDED_IDS = st.integers(min_value=1, max_value=3)
ID_FIELDS = {"property", "unit", "assigned_to", "checklist_template", "user", "checklist_item", "task"}
SEEDED: dict[str, Any] = json.loads(os.environ.get("FUZZ_SEEDED") or "{}")
TIMEZONES = ("UTC", "Europe/Lisbon", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns")


def _domain(module: str, name: str, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """A choice list from Cosmo's domain, or the contract's list if the code has moved (hints only lose depth)."""
    try:
        value = getattr(__import__(module, fromlist=[name]), name)
        return tuple(str(v) for v in value) or fallback
    except Exception:
        return fallback


ROLES = _domain("cosmo.domain.identity", "ROLES", ("superuser", "manager", "staff", "viewer", "auditor"))
TASK_GROUPS = _domain(
    "cosmo.domain.identity", "TASK_GROUPS", ("cleaning", "maintenance", "laundry", "lawn_pool", "general", "none")
)
TASK_TYPES = _domain(
    "cosmo.domain.checklists",
    "TASK_TYPES",
    ("cleaning", "maintenance", "laundry", "lawn_pool", "inspection", "preparation", "administration", "other"),
)
ITEM_TYPES = _domain("cosmo.domain.checklists", "ITEM_TYPES", ("check", "photo_required", "text_input", "number_input"))
PROPERTY_TYPES = _domain(
    "cosmo.domain.properties", "PROPERTY_TYPES", ("apartment", "house", "condo", "villa", "cabin", "other")
)
UNIT_STATUSES = _domain("cosmo.domain.properties", "UNIT_STATUSES", ("vacant", "occupied", "maintenance", "inactive"))
TASK_STATUSES = _domain("cosmo.domain.tasks", "STATUSES", ("pending", "in-progress", "completed", "canceled"))
PRIORITIES = _domain("cosmo.domain.tasks", "PRIORITIES", ("low", "medium", "high", "urgent"))
PHOTO_TYPES = _domain(
    "cosmo.domain.photos", "PHOTO_TYPES", ("before", "after", "during", "general", "reference", "damage", "checklist")
)
PHOTO_STATUSES = _domain("cosmo.domain.photos", "PHOTO_STATUSES", ("pending", "approved", "rejected", "archived"))

CHOICES: dict[str, tuple[str, ...]] = {
    "role": ROLES,
    "task_group": TASK_GROUPS,
    "task_type": TASK_TYPES,
    "item_type": ITEM_TYPES,
    "property_type": PROPERTY_TYPES,
    "priority": PRIORITIES,
    "photo_type": PHOTO_TYPES,
    "photo_status": PHOTO_STATUSES,
    "timezone": TIMEZONES,
}


def _choices(field: str, owner: str) -> tuple[str, ...] | None:
    if field == "status":
        return UNIT_STATUSES if "unit" in owner.lower() else TASK_STATUSES
    return CHOICES.get(field)


def _constrain(schema: Any, choices: tuple[str, ...]) -> None:
    """Adds `enum` to a bare string schema (or to the string branch of a nullable one)."""
    if not isinstance(schema, dict) or any(k in schema for k in ("enum", "const", "$ref", "pattern", "format")):
        return
    kind = schema.get("type")
    if kind == "string":
        schema["enum"] = list(choices)
    elif isinstance(kind, list) and "string" in kind and set(kind) <= {"string", "null"}:
        schema["enum"] = [*choices, *([None] if "null" in kind else [])]
    for key in ("oneOf", "anyOf"):
        for branch in schema.get(key) or []:
            _constrain(branch, choices)


def _walk(schema: Any, owner: str) -> None:
    if isinstance(schema, list):
        for item in schema:
            _walk(item, owner)
        return
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            choices = _choices(name, owner)
            if choices:
                _constrain(sub, choices)
        _walk(list(properties.values()), owner)
    for key in ("items", "additionalProperties", "oneOf", "anyOf", "allOf"):
        _walk(schema.get(key), owner)


def _refs(schema: Any, found: set[str]) -> None:
    """The names of the components a schema refers to, directly (the caller follows them)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[-1])
        for value in schema.values():
            _refs(value, found)
    elif isinstance(schema, list):
        for value in schema:
            _refs(value, found)


def _closure(roots: list[Any], components: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    todo: set[str] = set()
    _refs(roots, todo)
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            _refs(components.get(name), todo)
    return names


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    components = (raw_schema.get("components") or {}).get("schemas") or {}
    requests: list[Any] = []
    responses: list[Any] = []
    for operations in (raw_schema.get("paths") or {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                requests += [operation.get("requestBody"), operation.get("parameters")]
                responses.append(operation.get("responses"))
    # Only what describes requests alone: an enum added to a response schema would be checked against the answers.
    for name in sorted(_closure(requests, components) - _closure(responses, components)):
        _walk(components[name], name)
    for path, operations in (raw_schema.get("paths") or {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters") or []:
                choices = _choices(parameter.get("name", ""), path) if parameter.get("in") == "query" else None
                if choices:
                    _constrain(parameter.get("schema"), choices)
            for content in ((operation.get("requestBody") or {}).get("content") or {}).values():
                schema = content.get("schema")
                if isinstance(schema, dict) and "$ref" not in schema:
                    _walk(schema, f"{method} {path}")
    paths = raw_schema.setdefault("paths", {})
    if not os.environ.get("FUZZ_CONFORMANCE") and not any(p.startswith("/media/") for p in paths):
        paths["/media/{name}"] = MEDIA_PATH


# The signed media route is left out of the document; its query string is parsed all the same. Fuzzed only outside
# conformance mode: the document makes no promise about it.
MEDIA_PATH = {
    "get": {
        "operationId": "FuzzHintMedia",
        "summary": "A media file, by signed URL (added by fuzz/hooks.py)",
        "security": [],
        "parameters": [
            {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "expires", "in": "query", "schema": {"type": "string"}},
            {"name": "signature", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": {"description": "the file"}},
    }
}


def _image(fmt: str, mode: str, width: int, height: int, exif: bool) -> bytes:
    from PIL import Image

    image = Image.new(mode, (width, height), "red" if mode in ("RGB", "RGBA", "CMYK") else 128)
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif:
        data = Image.Exif()
        data.get_ifd(0x8769)[36867] = "2025:09:12 08:15:00"
        kwargs["exif"] = data
    image.save(out, fmt, **kwargs)
    return out.getvalue()


SIDES = st.integers(1, 48)
IMAGES = st.one_of(
    st.builds(
        _image, st.just("PNG"), st.sampled_from(["RGB", "RGBA", "L", "P", "1", "I;16"]), SIDES, SIDES, st.just(False)
    ),
    st.builds(_image, st.just("JPEG"), st.sampled_from(["RGB", "L", "CMYK"]), SIDES, SIDES, st.booleans()),
    st.builds(_image, st.just("WEBP"), st.sampled_from(["RGB", "RGBA"]), SIDES, SIDES, st.booleans()),
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


CHAT: dict[str, list[str]] = SEEDED.get("chat") or {}
# Chat rooms and messages are named by UUID: path parameters and body fields that name one get the seeded ones.
UUID_FIELDS = {"room": "rooms", "message": "messages", "reply_to": "messages"}


def _seeded_uuid(name: str) -> st.SearchStrategy | None:
    found = CHAT.get(UUID_FIELDS.get(name, ""))
    return st.sampled_from(found) if found else None


def _path_variant(name: str, value: Any) -> st.SearchStrategy:
    if _is_int(value):
        return SEEDED_IDS
    if isinstance(value, str) and (seeded := _seeded_uuid(name)) is not None:
        return seeded
    return st.just(value)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    if not any(_is_int(v) or (isinstance(v, str) and _seeded_uuid(k)) for k, v in path_parameters.items()):
        return st.just(path_parameters)
    variants = {k: _path_variant(k, v) for k, v in path_parameters.items()}
    return st.one_of(st.just(path_parameters), st.fixed_dictionaries(variants))


def _registration(n: int) -> dict[str, Any]:
    password = SEEDED["login"]["password"]
    return {
        "username": f"fuzzreg{n}",
        "email": f"fuzzreg{n}@example.com",
        "password": password,
        "password_confirm": password,
        "invite_code": SEEDED["invite_code"],
    }


def _accepted(path: str) -> st.SearchStrategy | None:
    """A body a public endpoint accepts (200/201), from what the harness seeded; None when there is none."""
    refresh = SEEDED.get("refresh") or [None, None]
    if path == "/api/token/" and "login" in SEEDED:
        return st.just(dict(SEEDED["login"]))
    if path == "/api/token/refresh/" and refresh[0]:
        return st.just({"refresh": refresh[0]})
    if path == "/api/token/revoke/" and refresh[1]:
        return st.just({"refresh": refresh[1]})
    if path == "/api/validate-invite/" and "invite_code" in SEEDED:
        return st.just({"code": SEEDED["invite_code"]})
    if path == "/api/register/" and "invite_code" in SEEDED and "login" in SEEDED:
        return st.integers(1, 10**9).map(_registration)
    return None


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
    operation = getattr(context, "operation", None)
    accepted = _accepted(getattr(operation, "path", "") or "")
    if accepted is not None:
        return st.one_of(st.just(body), accepted)
    if not isinstance(body, dict):
        return st.just(body)
    replaced = {
        k: SEEDED_IDS.map(str) if isinstance(v, str) else SEEDED_IDS  # form fields are text
        for k, v in body.items()
        if k in ID_FIELDS and (_is_int(v) or isinstance(v, str) or v is None)
    }
    for k, v in body.items():
        if (isinstance(v, str) or v is None) and (seeded := _seeded_uuid(k)) is not None:
            replaced[k] = seeded
    if "image" in body:
        replaced["image"] = IMAGES
    if not replaced:
        return st.just(body)
    variant = st.fixed_dictionaries({k: replaced.get(k, st.just(v)) for k, v in body.items()})
    return st.one_of(st.just(body), variant)
