"""The OpenAPI document tells the truth (issue 9).

Two layers: structural promises about /api/schema/openapi.json, checked in process on both backends (every path has
its trailing slash, every operation documents its errors, the public endpoints say they need no token, list
endpoints declare their query parameters, bodies that refuse unknown fields say so, every JSON answer has a schema);
and a schemathesis run against a real server on SQLite with the response-conformance checks (fuzz/api.py
--conformance), which fails on any answer the document does not describe: an undocumented status, content type or
header, or a body that contradicts its schema.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cosmo.domain.checklists import TASK_TYPES
from cosmo.domain.identity import ROLES, TASK_GROUPS
from cosmo.domain.properties import PROPERTY_TYPES
from cosmo.domain.tasks import PRIORITIES, STATUSES
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "post", "put", "patch", "delete")
# The endpoints that need no access token (the contract's), as "METHOD path".
PUBLIC = {
    "POST /api/token/",
    "POST /api/token/refresh/",
    "POST /api/token/revoke/",
    "POST /api/register/",
    "POST /api/validate-invite/",
    "GET /api/health/",
    "GET /api/health/ready/",
}
BOOL = ("true", "false")
TASK_FILTERS: dict[str, tuple[str, ...] | None] = {
    "status": STATUSES,
    "task_type": TASK_TYPES,
    "priority": PRIORITIES,
    "assigned_to": None,
    "property": None,
    "due_before": None,
    "due_after": None,
    "search": None,
}
TASK_ORDERING = ("due_date", "created_at", "priority", "status", "title", "id")
# List endpoint -> (filters, each with the values it must accept when it is a choice; ordering fields), as the
# README documents them. Every list also takes `page` and `page_size`.
LISTS: dict[str, tuple[dict[str, tuple[str, ...] | None], tuple[str, ...]]] = {
    "/api/users/": (
        {"role": ROLES, "task_group": TASK_GROUPS, "is_active": BOOL, "search": None},
        ("id", "username", "email", "first_name", "last_name", "role", "date_joined"),
    ),
    "/api/admin/invite-codes/": ({"is_active": BOOL, "role": ROLES}, ("created_at", "expires_at", "id", "role")),
    "/api/properties/": (
        {"property_type": PROPERTY_TYPES, "search": None},
        ("name", "id", "created_at", "property_type"),
    ),
    "/api/checklist-templates/": (
        {"task_type": TASK_TYPES, "is_default": BOOL},
        ("name", "id", "task_type", "created_at"),
    ),
    "/api/tasks/": (TASK_FILTERS, TASK_ORDERING),
    "/api/staff/tasks/": (TASK_FILTERS, TASK_ORDERING),
    "/api/notifications/": ({"is_read": BOOL}, ("created_at", "id")),
}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        prefix = "#/components/schemas/"
        assert schema["$ref"].startswith(prefix), schema
        schema = document["components"]["schemas"][schema["$ref"][len(prefix) :]]
    return schema


def accepts(schema: dict[str, Any], value: str) -> bool:
    """Whether a query parameter's (string) schema lets `value` through: its enum, else its pattern."""
    if "enum" in schema:
        return value in schema["enum"]
    if "pattern" in schema:
        return re.search(schema["pattern"], value) is not None
    return True


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def paths_and_refs(document: dict[str, Any]) -> list[str]:
    problems = [f"{p}: no trailing slash" for p in document["paths"] if not p.endswith("/")]
    problems += [f"{p}: documented (signed URLs only)" for p in document["paths"] if p.startswith("/media")]
    known = {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}
    problems += [f"{ref}: no such schema" for ref in sorted(set(refs(document)) - known)]
    return problems


def errors(document: dict[str, Any]) -> list[str]:
    problems = []
    validation = document["components"]["schemas"]["ValidationError"]
    if set(validation.get("required", ())) != {"error", "details"}:
        problems.append(f"ValidationError requires {validation.get('required')}, not error and details")
    for path, method, operation in operations(document):
        label = f"{method.upper()} {path}"
        responses = operation["responses"]
        bad_input = responses.get("400", {}).get("content", {}).get("application/json", {}).get("schema")
        if bad_input != {"$ref": "#/components/schemas/ValidationError"}:
            problems.append(f"{label}: 400 is {bad_input}")
        # Of the public endpoints, only the token endpoints answer 401 (bad credentials).
        needed = ("401", "403", "429") if label not in PUBLIC else ("401",) if path.startswith("/api/token/") else ()
        problems += [f"{label}: no {status}" for status in needed if status not in responses]
        for status, response in responses.items():
            if status.startswith(("4", "5")) and "application/json" not in response.get("content", {}):
                problems.append(f"{label}: {status} has no JSON body")
    return problems


def security(document: dict[str, Any]) -> list[str]:
    """The document's default is the bearer token; the public endpoints must say they do without."""
    problems = [] if document.get("security") == [{"BearerToken": []}] else [f"security is {document.get('security')}"]
    labels = {f"{m.upper()} {p}": op for p, m, op in operations(document)}
    problems += [f"{label}: not documented" for label in sorted(PUBLIC - set(labels))]
    for label, operation in labels.items():
        needs = operation.get("security")
        if label in PUBLIC and needs != []:
            problems.append(f"{label}: needs no token, but the document asks for one (security: {needs})")
        elif label not in PUBLIC and needs == []:
            problems.append(f"{label}: needs a token, but the document says it does not")
    return problems


def query_parameters(document: dict[str, Any]) -> list[str]:
    problems = []
    for path, (filters, ordering) in LISTS.items():
        declared = {
            p["name"]: p.get("schema", {}) for p in document["paths"][path]["get"].get("parameters", [])
            if p.get("in") == "query"
        }  # fmt: skip
        for name in ("page", "page_size", "ordering", *filters):
            if name not in declared:
                problems.append(f"GET {path}: `{name}` not declared")
        for name, values in filters.items():
            if name in declared and values:
                problems += [f"GET {path}: `{name}` refuses {v!r}" for v in values if not accepts(declared[name], v)]
                if accepts(declared[name], "no-such-choice"):
                    problems.append(f"GET {path}: `{name}` does not say which values it takes")
        if "ordering" in declared:
            schema = declared["ordering"]
            good = [*ordering, *(f"-{f}" for f in ordering), f"-{ordering[-1]},{ordering[0]}"]
            problems += [f"GET {path}: ordering refuses {v!r}" for v in good if not accepts(schema, v)]
            if accepts(schema, "no_such_field"):
                problems.append(f"GET {path}: ordering does not say which fields it takes")
        for name in ("page", "page_size"):
            if name in declared and (not accepts(declared[name], "2") or accepts(declared[name], "two")):
                problems.append(f"GET {path}: `{name}` is not declared as digits")
    return problems


def answers(document: dict[str, Any]) -> list[str]:
    """Every 2xx but 204 is JSON (or JSON Lines: the audit export) with a schema that has properties; a 204 has no
    body."""
    problems = []
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            label = f"{method.upper()} {path} -> {status}"
            content = response.get("content", {})
            if status == "204":
                problems += [f"{label}: a 204 with a body"] if content else []
            elif status.startswith("2"):
                media = content.get("application/json") or content.get("application/x-ndjson") or {}
                schema = media.get("schema")
                if schema is None:
                    problems.append(f"{label}: no JSON schema ({sorted(content)})")
                elif not resolve(document, schema).get("properties"):
                    problems.append(f"{label}: a schema without properties: {schema}")
    return problems


def request_bodies(document: dict[str, Any]) -> list[str]:
    """Every JSON body of an endpoint that needs a token refuses unknown fields (400): its schema, and the item
    schemas it nests, say `additionalProperties: false`. The upload is a multipart form that requires `image`."""
    problems = []
    for path, method, operation in operations(document):
        label = f"{method.upper()} {path}"
        content = operation.get("requestBody", {}).get("content", {})
        if label in PUBLIC or "application/json" not in content:
            continue
        todo = [content["application/json"]["schema"]]
        while todo:
            schema = resolve(document, todo.pop())
            todo += schema.get("oneOf", []) + schema.get("anyOf", [])
            if schema.get("type") == "array":
                todo.append(schema.get("items", {}))
            if "properties" in schema:
                if schema.get("additionalProperties") is not False:
                    problems.append(f"{label}: {schema.get('title', schema)} accepts unknown fields")
                todo += [s for s in schema["properties"].values() if isinstance(s, dict)]
    upload = document["paths"]["/api/tasks/{task_id}/images/create/"]["post"].get("requestBody", {})
    if list(upload.get("content", {})) != ["multipart/form-data"]:
        problems.append(f"POST /api/tasks/{{task_id}}/images/create/: body is {list(upload.get('content', {}))}")
    else:
        form = resolve(document, upload["content"]["multipart/form-data"]["schema"])
        if form.get("required") != ["image"] or form["properties"].get("image", {}).get("format") != "binary":
            problems.append(f"POST /api/tasks/{{task_id}}/images/create/: the form is {form}")
    return problems


def test_document_structure(api: Api) -> None:
    """What the document must say, whatever the answers: checked in process, on both backends."""
    r = api.get("/api/schema/openapi.json")
    assert r.status_code == 200, r.text
    document = r.json()
    checks = (paths_and_refs, errors, security, query_parameters, answers, request_bodies)
    found = {check.__name__: check(document) for check in checks}
    report = [f"{name}:\n  " + "\n  ".join(problems) for name, problems in found.items() if problems]
    assert not report, "\n".join(report)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_answer_contradicts_the_document() -> None:
    """schemathesis against a live server per role (fuzz/api.py): every answer's status, content type, headers and
    body must be the ones the document describes for it. About a minute on a 2-core machine."""
    command = [
        sys.executable,
        str(ROOT / "fuzz" / "api.py"),
        "--backend",
        "sqlite",
        "--conformance",
        "--max-examples",
        "5",
        "--seed",
        "1",
        "--port",
        str(free_port()),  # beside a `make fuzz` (8101) or another test run
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(
            f"fuzz/api.py --conformance exited with {result.returncode} after {time.monotonic() - started:.0f} s"
            f" ({' '.join(command[1:])}):\n{result.stdout}\n{result.stderr[-5000:]}",
            pytrace=False,
        )
