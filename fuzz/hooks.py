"""Schemathesis hooks that let the fuzzer past the first validation layer (loaded by fuzz/api.py unless --no-hints).

The served OpenAPI document leaves most choices as bare strings and ids as bare integers, so nearly every generated
request is a 400 or a 404 and the code behind validation is never reached. These hooks only add what the document
lacks, and never replace a constraint it has:

- `before_load_schema`: `additionalProperties: false` on request bodies that do not say (Cosmo refuses unknown
  fields, so otherwise most generated bodies stop there); an `enum` of the valid values (taken from Cosmo's
  domain) on choice fields (`role`, `task_group`, `task_type`, `status`, `priority`, ...) that are plain strings
  in the document; a form for the photo upload when the document describes the multipart body as an arbitrary
  object; the list filters the README documents (`search`, `ordering`, `page`, `due_before`, ...) as query
  parameters of list operations that do not declare them; and the signed media route (`/media/{name}`), which
  the document leaves out.
- `flatmap_path_parameters` / `flatmap_body`: each generated case also has a variant whose integer ids (path ids,
  and `property`, `unit`, `assigned_to`, ... in bodies) are 1-3, the ids the harness seeded, and whose uploaded
  `image` is a small real JPEG, PNG or WebP. Both variants are generated: the original keeps the odd values.
"""

from __future__ import annotations

import io
from typing import Any

import schemathesis
from hypothesis import strategies as st

SEEDED_IDS = st.integers(min_value=1, max_value=3)
ID_FIELDS = {"property", "unit", "assigned_to", "checklist_template", "user", "checklist_item", "task"}
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


UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "format": "binary"},
        "photo_type": {"type": "string", "enum": list(PHOTO_TYPES)},
        "description": {"type": "string"},
        "checklist_item": {"type": "integer"},
        "task": {"type": "integer"},
    },
    "required": ["image"],
}


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    for name, schema in ((raw_schema.get("components") or {}).get("schemas") or {}).items():
        _walk(schema, name)
        if name.endswith(("Request", "Item")) and isinstance(schema, dict) and "properties" in schema:
            # Request bodies refuse unknown fields; without this, most positive cases die on an invented key.
            schema.setdefault("additionalProperties", False)
    for path, operations in (raw_schema.get("paths") or {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            owner = f"{method} {path}"
            if method == "get":
                _add_query_hints(path, operation)
            for parameter in operation.get("parameters") or []:
                choices = _choices(parameter.get("name", ""), path) if parameter.get("in") == "query" else None
                if choices:
                    _constrain(parameter.get("schema"), choices)
            for media_type, content in ((operation.get("requestBody") or {}).get("content") or {}).items():
                schema = content.get("schema")
                if (
                    media_type.startswith("multipart/")
                    and path.rstrip("/").endswith("/images/create")
                    and isinstance(schema, dict)
                    and not schema.get("properties")
                    and "$ref" not in schema
                ):
                    content["schema"] = schema = dict(UPLOAD_FORM)
                    content.setdefault("encoding", {"image": {"contentType": "image/png, image/jpeg, image/webp"}})
                elif media_type == "application/json" and isinstance(schema, dict) and "properties" in schema:
                    schema.setdefault("additionalProperties", False)
                _walk(schema, owner)
    paths = raw_schema.setdefault("paths", {})
    if not any(p.startswith("/media/") for p in paths):
        paths["/media/{name}"] = MEDIA_PATH


PAGE = {"page": {"type": "integer"}, "page_size": {"type": "integer"}}
SEARCH = {"search": {"type": "string"}}


def _ordering(*fields: str) -> dict[str, Any]:
    values = [*fields, *(f"-{f}" for f in fields), f"-{fields[-1]},{fields[0]}"]
    return {"ordering": {"type": "string", "enum": values}}


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


TASK_QUERY = {
    "status": _enum(TASK_STATUSES),
    "task_type": _enum(TASK_TYPES),
    "priority": _enum(PRIORITIES),
    "assigned_to": {"type": "integer"},
    "property": {"type": "integer"},
    "due_before": {"type": "string", "format": "date-time"},
    "due_after": {"type": "string", "format": "date-time"},
    **SEARCH,
    **_ordering("due_date", "created_at", "priority", "status", "title", "id"),
    **PAGE,
}
# The list filters the README documents, for list operations whose parameters the document does not declare.
QUERY_HINTS: dict[str, dict[str, Any]] = {
    "/api/users": {
        "role": _enum(ROLES),
        "task_group": _enum(TASK_GROUPS),
        "is_active": {"type": "boolean"},
        **SEARCH,
        **_ordering("id", "username", "email", "first_name", "last_name", "role", "date_joined"),
        **PAGE,
    },
    "/api/admin/invite-codes": {
        "is_active": {"type": "boolean"},
        "role": _enum(ROLES),
        **_ordering("created_at", "expires_at", "id", "role"),
        **PAGE,
    },
    "/api/properties": {
        "property_type": _enum(PROPERTY_TYPES),
        **SEARCH,
        **_ordering("name", "id", "created_at", "property_type"),
        **PAGE,
    },
    "/api/properties/{property_id}/units": PAGE,
    "/api/checklist-templates": {
        "task_type": _enum(TASK_TYPES),
        "is_default": {"type": "boolean"},
        **_ordering("name", "id", "task_type", "created_at"),
        **PAGE,
    },
    "/api/tasks": TASK_QUERY,
    "/api/staff/tasks": TASK_QUERY,
    "/api/notifications": {"is_read": {"type": "boolean"}, **_ordering("created_at", "id"), **PAGE},
}
# The signed media route is left out of the document; its query string is parsed all the same.
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


def _add_query_hints(path: str, operation: dict[str, Any]) -> None:
    hints = QUERY_HINTS.get(path.rstrip("/") or "/")
    if not hints:
        return
    parameters = operation.setdefault("parameters", [])
    declared = {p.get("name") for p in parameters if isinstance(p, dict) and p.get("in") == "query"}
    for name, schema in hints.items():
        if name not in declared:
            parameters.append({"name": name, "in": "query", "required": False, "schema": dict(schema)})


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


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> st.SearchStrategy:
    if not isinstance(path_parameters, dict) or not any(_is_int(v) for v in path_parameters.values()):
        return st.just(path_parameters)
    seeded = st.fixed_dictionaries({k: SEEDED_IDS if _is_int(v) else st.just(v) for k, v in path_parameters.items()})
    return st.one_of(st.just(path_parameters), seeded)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy:
    if not isinstance(body, dict):
        return st.just(body)
    replaced = {k: SEEDED_IDS for k, v in body.items() if k in ID_FIELDS and (_is_int(v) or v is None)}
    if "image" in body:
        replaced["image"] = IMAGES
    if not replaced:
        return st.just(body)
    variant = st.fixed_dictionaries({k: replaced.get(k, st.just(v)) for k, v in body.items()})
    return st.one_of(st.just(body), variant)
