"""Bounded API fuzzing: schemathesis against a real Cosmo server, once per role, reporting every 5xx.

For each role (anonymous, staff, manager, superuser) the script starts a fresh `cosmo serve` on a fresh database
(so one role's deletions and deactivations never blind the next), seeds it through the CLI and the API (users 1-3:
the superuser, a manager and a staff member registered through invite codes; invite codes, properties, units,
checklist templates, tasks and photos 1-3), then runs `st run` against /api/schema/openapi.json with that role's
bearer token, the `not_a_server_error` check and the hints of fuzz/hooks.py. It prints, per role, the cases run
and the answers by status class; then each distinct 5xx (method, path template, the exception and the innermost
line of Cosmo's code above the storage layer in the server's traceback) with a curl reproducer and the traceback;
then the errors the server logged outside any request (projection runners), with the request in flight then.

With --conformance it also runs schemathesis's response conformance checks (status code, content type, headers and
body schema against the document) and reports each distinct answer that contradicts the document: the check, the
operation, the status, what differs, the answer and a curl reproducer. The media route, which the document leaves
out, is then not fuzzed (the document makes no promise about it).

    .venv/bin/python fuzz/api.py --backend sqlite|postgres [--max-examples N] [--roles staff,manager] [--seed S]
                                 [--conformance]

Scratch files go to /tmp/fuzz-<backend>-*/ (one folder per role: server log, schemathesis output and reports,
the SQLite database and media), removed at the end unless something was found or --keep is given. On PostgreSQL
each role gets a database `cosmo_fuzz_<random>`, always dropped; Redis database 13 holds the rate-limit counters,
and the `cosmo:*` keys the run added there are deleted at the end (nothing else is touched: no FLUSHDB).

Exit status: 0 nothing found; 1 a 5xx, a request the server never answered, an error in the server log, or (with
--conformance) an answer the document does not describe; 2 the harness could not run (server did not start,
seeding failed, PostgreSQL or Redis unreachable, schemathesis crashed).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the project's .venv/bin when run as .venv/bin/python fuzz/api.py
ROLES = ("anonymous", "staff", "manager", "superuser")
PORTS = {"sqlite": 8101, "postgres": 8102}
PASSWORD = "Fuzz-pass-1234"
USERS = {"superuser": "fuzzadmin", "manager": "fuzzboss", "staff": "fuzzcleo"}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"
REDIS_PATTERN = "cosmo:*"
TRACEBACK_LINES = 80  # per failure in the printed summary; the server log has all of it
CONFORMANCE_CHECKS = (
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


class HarnessError(Exception):
    """The run could not be made (as opposed to: it found something)."""


# --------------------------------------------------------------------------------------------------- the server


@dataclass
class Target:
    backend: str
    port: int
    workdir: Path
    env: dict[str, str]
    dbname: str | None = None
    process: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_env(backend: str, workdir: Path, dbname: str | None, pg_admin: str, redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COSMO_")}
    env.update(
        {
            "COSMO_MEDIA_ROOT": str(workdir / "media"),
            "COSMO_SECRET_KEY": secrets.token_urlsafe(48),
            "COSMO_PASSWORD_COST": "low",
            "COSMO_ACCESS_TOKEN_TTL": "1d",  # a role's run must never outlive its token
            "COSMO_THROTTLE_AUTH": "100000/minute",
            "COSMO_THROTTLE_USER": "10000000/hour",
            "COSMO_THROTTLE_REFRESH": "100000/minute",
            "COSMO_THROTTLE_UPLOAD": "100000/minute",
        }
    )
    if backend == "sqlite":
        env["COSMO_DATABASE_URL"] = f"sqlite:///{workdir / 'cosmo.db'}"
    else:
        env["COSMO_DATABASE_URL"] = f"{pg_admin.rsplit('/', 1)[0]}/{dbname}"
        env["COSMO_REDIS_URL"] = redis_url
    return env


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def cli(target: Target, *args: str) -> None:
    result = subprocess.run(
        [str(BIN / "cosmo"), *args], env=target.env, cwd=target.workdir, capture_output=True, text=True, timeout=300
    )
    with target.log_path.open("a") as log:
        log.write(f"$ cosmo {' '.join(args[:1])} ...\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise HarnessError(f"`cosmo {args[0]}` failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def start_server(target: Target, timeout: float) -> None:
    if port_in_use(target.port):
        raise HarnessError(f"port {target.port} is already in use (another fuzz run?)")
    log = target.log_path.open("a")
    target.process = subprocess.Popen(
        [str(BIN / "cosmo"), "serve", "--host", "127.0.0.1", "--port", str(target.port)],
        env=target.env,
        cwd=target.workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C of the harness reaches the server only through stop_server
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.process.poll() is not None:
            raise HarnessError(
                f"the server exited with {target.process.returncode} before answering:\n{log_tail(target.log_path)}"
            )
        try:
            if httpx.get(f"{target.base}/api/health/", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise HarnessError(f"the server did not answer /api/health/ within {timeout:.0f} s:\n{log_tail(target.log_path)}")


def stop_server(target: Target) -> None:
    proc = target.process
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def create_database(pg_admin: str) -> str:
    import psycopg

    name = f"cosmo_fuzz_{secrets.token_hex(5)}"
    try:
        with psycopg.connect(pg_admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error as exc:
        raise HarnessError(f"cannot create a database through {pg_admin}: {exc}") from exc
    return name


def drop_database(pg_admin: str, name: str) -> None:
    import psycopg

    assert name.startswith("cosmo_fuzz_")
    with psycopg.connect(pg_admin, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def redis_keys(redis_url: str) -> set[bytes]:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        return set(client.scan_iter(match=REDIS_PATTERN, count=1000))
    except redis.RedisError as exc:
        raise HarnessError(f"cannot reach Redis at {redis_url}: {exc}") from exc
    finally:
        client.close()


def delete_redis_keys(redis_url: str, keys: set[bytes]) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        keys = sorted(keys)
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
    finally:
        client.close()


# ------------------------------------------------------------------------------------------------------ seeding


def png(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, "PNG")
    return out.getvalue()


def seed(target: Target) -> tuple[dict[str, str], dict[str, Any]]:
    """Users 1-3 and resources 1-3 of every kind; returns role -> access token, and what the hints need to get past
    the public endpoints (fuzz/hooks.py: a login, two refresh tokens, the code of an invite with uses left)."""
    tokens: dict[str, str] = {}
    public: dict[str, Any] = {"login": {"username": USERS["superuser"], "password": PASSWORD}}

    with httpx.Client(base_url=target.base, timeout=30) as client:

        def call(method: str, path: str, token: str | None = None, expect: int = 200, **kwargs: Any) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = client.request(method, path, headers=headers, **kwargs)
            if response.status_code != expect:
                raise HarnessError(f"seeding: {method} {path} answered {response.status_code}: {response.text[:500]}")
            return response.json()

        def login(username: str) -> str:
            return call("POST", "/api/token/", json={"username": username, "password": PASSWORD})["access"]

        admin = tokens["superuser"] = login(USERS["superuser"])
        user_ids = {"superuser": call("GET", "/api/users/me/", admin)["id"]}
        for role, group in (("manager", "none"), ("staff", "cleaning")):
            code = call("POST", "/api/admin/create-invite-code/", admin, 201, json={"role": role, "task_group": group})[
                "code"
            ]
            user_ids[role] = call(
                "POST",
                "/api/register/",
                expect=201,
                json={
                    "username": USERS[role],
                    "email": f"{USERS[role]}@example.com",
                    "password": PASSWORD,
                    "password_confirm": PASSWORD,
                    "invite_code": code,
                    "first_name": role.title(),
                    "last_name": "Fuzz",
                },
            )["id"]
            tokens[role] = login(USERS[role])
        # A third invite, left unused, so invite codes 1-3 exist.
        public["invite_code"] = call(
            "POST",
            "/api/admin/create-invite-code/",
            admin,
            201,
            json={"role": "staff", "task_group": "general", "max_uses": 5, "notes": "fuzz"},
        )["code"]
        # A refresh token for /api/token/refresh/ and another for /api/token/revoke/, of two users: presenting a used
        # refresh token again revokes every refresh token of its user.
        public["refresh"] = [
            call("POST", "/api/token/", json=public["login"])["refresh"],
            call("POST", "/api/token/", json={"username": USERS["manager"], "password": PASSWORD})["refresh"],
        ]
        boss, cleo = tokens["manager"], tokens["staff"]
        properties, units, templates = [], [], []
        for i in (1, 2, 3):
            pid = call(
                "POST",
                "/api/properties/",
                boss,
                201,
                json={"name": f"Fuzz House {i}", "address": f"{i} Fuzz Lane", "property_type": "house"},
            )["id"]
            properties.append(pid)
            units.append(call("POST", f"/api/properties/{pid}/units/", boss, 201, json={"unit_number": f"{i}A"})["id"])
            templates.append(
                call(
                    "POST",
                    "/api/checklist-templates/",
                    boss,
                    201,
                    json={
                        "name": f"Fuzz checklist {i}",
                        "task_type": ("cleaning", "maintenance", "inspection")[i - 1],
                        "is_default": i == 1,
                        "items": [
                            {"text": "Beds made", "is_required": True, "room": "Bedroom"},
                            {"text": "Photo of the kitchen", "item_type": "photo_required"},
                            {"text": "Towels left", "item_type": "number_input"},
                            {"text": "Remarks", "item_type": "text_input"},
                        ],
                    },
                )["id"]
            )
        due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        tasks = []
        for i, (task_type, assignee) in enumerate(
            (("cleaning", user_ids["staff"]), ("cleaning", None), ("maintenance", user_ids["manager"]))
        ):
            tasks.append(
                call(
                    "POST",
                    "/api/tasks/",
                    boss,
                    201,
                    json={
                        "title": f"Fuzz task {i + 1}",
                        "task_type": task_type,
                        "description": "Seeded by fuzz/api.py",
                        "priority": "high",
                        "property": properties[i],
                        "unit": units[i],
                        "assigned_to": assignee,
                        "due_date": due,
                        "checklist_template": templates[i],
                    },
                )["id"]
            )
        for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
            call(
                "POST",
                f"/api/tasks/{tasks[0]}/images/create/",
                cleo,
                201,
                files={"image": ("proof.png", png(color), "image/png")},
                data={"photo_type": "before", "description": "seeded"},
            )
        call("PATCH", f"/api/staff/tasks/{tasks[0]}/", cleo, json={"status": "in-progress"})
        # Chat: a group room of all three, a direct room, and messages, so room and message ids lead somewhere.
        room = call(
            "POST",
            "/api/chat/rooms/",
            boss,
            201,
            json={
                "room_type": "group",
                "name": "Fuzz room",
                "participant_ids": [user_ids["superuser"], user_ids["staff"]],
            },
        )["id"]
        direct = call(
            "POST",
            "/api/chat/rooms/",
            cleo,
            201,
            json={"room_type": "direct", "participant_ids": [user_ids["manager"]]},
        )["id"]
        messages = [
            call("POST", "/api/chat/messages/", cleo, 201, json={"room": room, "content": f"seeded {n}"})["id"]
            for n in (1, 2)
        ]
        messages.append(
            call("POST", "/api/chat/messages/", boss, 201, json={"room": direct, "content": "seeded"})["id"]
        )
        public["chat"] = {"rooms": [room, direct], "messages": messages}
    return tokens, public


# ---------------------------------------------------------------------------------------------- schemathesis run


@dataclass
class Interaction:
    role: str
    label: str  # "POST /api/tasks/{task_id}/assign" (the path template)
    case_id: str
    method: str
    uri: str
    headers: dict[str, list[str]]
    body: bytes | None
    status: int | None  # None: no response (timeout, connection reset)
    response: bytes
    timestamp: float  # when the request was sent (epoch seconds)
    elapsed: float
    phase: str
    token: str | None = field(default=None, repr=False)  # the role's access token (reproducers print a variable)

    @property
    def path(self) -> str:
        return norm_path(urlsplit(self.uri).path)


@dataclass
class CheckFailure:
    """A conformance check that failed on one answer (schemathesis's own failure record, as it reported it)."""

    check: str
    operation: str  # "GET /api/users/{user_id}/", as the document spells it
    kind: str  # the failure's class: UndefinedStatusCode, JsonSchemaError, ...
    title: str
    message: str
    interaction: Interaction

    @property
    def key(self) -> str:
        """What distinguishes one contradiction from another of the same check on the same operation and status:
        the schema location for a schema mismatch (the value that broke it varies), else the failure's kind."""
        schema_at = next((ln for ln in self.message.splitlines() if ln.startswith("Schema at ")), "")
        return f"{self.kind} {schema_at}".strip()


@dataclass
class RoleResult:
    role: str
    generated: int = 0
    statuses: Counter = field(default_factory=Counter)
    interactions: list[Interaction] = field(default_factory=list)
    check_failures: list[CheckFailure] = field(default_factory=list)
    st_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log_path: Path | None = None
    seed: str = ""
    server_died: str = ""

    @property
    def server_errors(self) -> list[Interaction]:
        return [i for i in self.interactions if i.status is None or i.status >= 500]


def norm_path(path: str) -> str:
    return unquote(path).rstrip("/") or "/"


def path_templates(document: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """The served document's path templates (plus the media route the hints add), as matchers."""
    paths = [*document.get("paths", {}), "/media/{name}"]
    matchers = []
    for template in sorted(paths, key=lambda p: p.count("{")):  # /images/create before /images/{photo_id}
        pattern = re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(norm_path(template)))
        matchers.append((re.compile(f"{pattern}/?"), norm_path(template)))
    return matchers


def run_schemathesis(
    target: Target, role: str, token: str | None, public: dict[str, Any], args: argparse.Namespace
) -> RoleResult:
    report_dir = target.workdir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    served = httpx.get(f"{target.base}/api/schema/openapi.json", timeout=30)
    (report_dir / "openapi.json").write_bytes(served.content)
    templates = path_templates(served.json())
    checks = ["not_a_server_error", *(CONFORMANCE_CHECKS if args.conformance else ())]
    command = [
        str(BIN / "st"),
        "run",
        f"{target.base}/api/schema/openapi.json",
        "--checks",
        ",".join(checks),
        "--max-examples",
        str(args.max_examples),
        "--workers",
        str(args.workers),
        "--phases",
        args.phases,
        "--request-timeout",
        str(args.request_timeout),
        "--report",
        "ndjson,json",
        "--report-dir",
        str(report_dir),
        "--report-ndjson-path",
        str(report_dir / "events.ndjson"),
        "--report-json-path",
        str(report_dir / "run.json"),
        "--output-sanitize",
        "false",  # the reproducers need the real headers and bodies
        "--continue-on-failure",
        "--no-color",
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    started = time.monotonic()
    with (target.workdir / "schemathesis.log").open("w") as out:
        # cwd: schemathesis reads schemathesis.toml and writes .hypothesis/ there; keep both out of the repo.
        proc = subprocess.run(
            command,
            cwd=target.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=st_env(public if not args.no_hints else None, args.conformance),
        )
    result = RoleResult(role=role, seconds=time.monotonic() - started, log_path=target.log_path)
    if target.process is not None and target.process.poll() is not None:
        result.server_died = f"the server exited with {target.process.returncode} during the run"
    summary_path = report_dir / "run.json"
    if not summary_path.exists():
        raise HarnessError(
            f"schemathesis exited with {proc.returncode} and wrote no report:\n"
            f"{log_tail(target.workdir / 'schemathesis.log')}"
        )
    summary = json.loads(summary_path.read_text())
    result.generated = summary["test_cases"]["generated"]
    result.seed = str(summary.get("seed", ""))
    result.st_errors = [f"{e['title']} (x{e['count']})" for e in summary.get("errors", [])]
    if not summary.get("complete", False) and not result.st_errors:
        result.st_errors.append(f"schemathesis stopped early: {summary.get('stop_reason')}")
    result.interactions, result.check_failures = read_events(report_dir / "events.ndjson", role, token, templates)
    for item in result.interactions:
        result.statuses["no response" if item.status is None else f"{item.status // 100}xx"] += 1
    return result


def st_env(hints: dict[str, Any] | None, conformance: bool) -> dict[str, str]:
    """The environment of `st run`: the hooks (unless --no-hints) and what they need from the seeding."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COSMO_", "SCHEMATHESIS_", "FUZZ_"))}
    env["SCHEMATHESIS_TELEMETRY"] = "false"  # opt out of the anonymous usage report
    if hints is not None:
        env["SCHEMATHESIS_HOOKS"] = str(Path(__file__).resolve().parent / "hooks.py")
        env["FUZZ_SEEDED"] = json.dumps(hints)
    if conformance:
        env["FUZZ_CONFORMANCE"] = "1"  # the hooks then leave the media route out
    return env


def _decode(value: Any) -> bytes | None:
    if isinstance(value, dict) and "$base64" in value:
        return base64.b64decode(value["$base64"])
    if isinstance(value, str):
        return value.encode()
    return None


def read_events(
    path: Path, role: str, token: str | None, templates: list[tuple[re.Pattern[str], str]]
) -> tuple[list[Interaction], list[CheckFailure]]:
    """Every request schemathesis made and every conformance check that failed, from its NDJSON event stream
    (ScenarioFinished events)."""
    found: list[Interaction] = []
    failures: list[CheckFailure] = []
    with path.open() as events:
        for line in events:
            finished = json.loads(line).get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            by_case: dict[str, Interaction] = {}
            for case_id, interaction in (recorder.get("interactions") or {}).items():
                request, response = interaction["request"], interaction.get("response")
                item = Interaction(
                    role=role,
                    label="",
                    case_id=case_id,
                    method=request["method"],
                    uri=request["uri"],
                    headers=request.get("headers") or {},
                    body=_decode(request.get("body")),
                    status=response["status_code"] if response else None,
                    response=(_decode(response.get("content")) or b"") if response else b"",
                    timestamp=interaction.get("timestamp", 0.0),
                    elapsed=(response or {}).get("elapsed") or 0.0,
                    phase=finished.get("phase", ""),
                    token=token,
                )
                template = next((t for pattern, t in templates if pattern.fullmatch(item.path)), item.path)
                item.label = f"{item.method} {template}"
                found.append(item)
                by_case[case_id] = item
            for case_id, nodes in (recorder.get("checks") or {}).items():
                for node in nodes:
                    failure = (node.get("failure_info") or {}).get("failure")
                    if (
                        node.get("name") not in CONFORMANCE_CHECKS
                        or str(node.get("status")).lower() != "failure"
                        or not failure
                    ):
                        continue
                    item = by_case.get(failure.get("case_id") or case_id) or by_case.get(case_id)
                    if item is None:
                        continue
                    failures.append(
                        CheckFailure(
                            check=node["name"],
                            operation=failure.get("operation") or item.label,
                            kind=failure.get("type", ""),
                            title=failure.get("title", ""),
                            message=failure.get("message", ""),
                            interaction=item,
                        )
                    )
    found.sort(key=lambda i: i.timestamp)
    return found, failures


# ------------------------------------------------------------------------------------- server log: tracebacks

RECORD = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")
REQUEST_ERROR = re.compile(r"unhandled error on (?P<method>[A-Z]+) (?P<path>\S+)")
STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})[,.](\d{3})")
FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$')


@dataclass
class LogError:
    """An ERROR/CRITICAL record of the server log, with its traceback."""

    text: str
    line_no: int

    @property
    def when(self) -> float | None:
        """Epoch seconds, when the record's format has a timestamp (server local time, to the millisecond)."""
        match = STAMP.search(self.text.splitlines()[0])
        if not match:
            return None
        moment = time.mktime(time.strptime(match[1].replace("T", " "), "%Y-%m-%d %H:%M:%S"))
        return moment + int(match[2]) / 1000

    @property
    def request(self) -> tuple[str, str] | None:
        match = REQUEST_ERROR.search(self.text.splitlines()[0])
        return (match["method"], norm_path(match["path"])) if match else None

    @property
    def exception(self) -> str:
        lines = [ln for ln in self.text.splitlines() if ln.strip()]
        for ln in reversed(lines):
            if not ln.startswith((" ", "\t")) and not RECORD.match(ln) and not ln.startswith("Traceback"):
                return ln.strip()
        return lines[0].strip() if lines else ""

    @property
    def exception_type(self) -> str:
        return self.exception.split(":", 1)[0]

    def frames(self) -> list[str]:
        """Cosmo's frames in the last traceback of the record (the exception that reached the log), outermost
        first, as "path:line in function: source"."""
        section = self.text.split("Traceback (most recent call last):")[-1].splitlines()
        found = []
        for i, line in enumerate(section):
            match = FRAME.match(line)
            if match and "/cosmo/" in match["file"] and "site-packages" not in match["file"]:
                file = match["file"]
                if file.startswith(f"{ROOT}/"):
                    file = os.path.relpath(file, ROOT)
                source = section[i + 1].strip() if i + 1 < len(section) else ""
                found.append(f"{file}:{match['line']} in {match['func']}: {source}")
        return found

    @property
    def our_frame(self) -> str:
        """The innermost frame in Cosmo's code above the storage layer (which every query goes through)."""
        frames = self.frames()
        above = [f for f in frames if "/cosmo/storage/" not in f]
        return (above or frames or ["(no frame in Cosmo's code)"])[-1]

    @property
    def innermost(self) -> str:
        frames = self.frames()
        return frames[-1] if frames else ""


def parse_server_log(path: Path | None) -> list[LogError]:
    errors: list[LogError] = []
    current: list[str] | None = None
    start = 0

    def close() -> None:
        nonlocal current
        if current is not None:
            errors.append(LogError("\n".join(current), start))
            current = None

    try:
        text = path.read_text(errors="replace") if path else ""
    except OSError:
        return errors
    for no, line in enumerate(text.splitlines(), 1):
        if RECORD.match(line):
            close()
            if line.startswith(("ERROR", "CRITICAL")):
                current, start = [line], no
        elif current is not None:
            current.append(line)
        elif line.startswith("Traceback"):
            current, start = [line], no
    close()
    return errors


# ------------------------------------------------------------------------------------------------------ report


@dataclass
class Finding:
    label: str
    status: str
    error: LogError | None
    example: Interaction
    log_path: Path
    roles: set[str] = field(default_factory=set)
    count: int = 0


@dataclass
class Background:
    """An error logged outside any request's handling (projection runners, start-up, uvicorn)."""

    error: LogError
    trigger: Interaction | None  # the request in flight when it was first logged
    log_path: Path
    first: bool  # the first error this server logged: its trigger is most likely the cause
    count: int = 0


@dataclass
class Contradiction:
    """Answers that contradict the document the same way: one check, one operation, one status, one kind of
    mismatch (for a body, one place in its schema)."""

    check: str
    operation: str
    status: str
    example: CheckFailure
    roles: set[str] = field(default_factory=set)
    count: int = 0


def contradictions(results: list[RoleResult]) -> list[Contradiction]:
    found: dict[tuple[str, ...], Contradiction] = {}
    for result in results:
        for failure in result.check_failures:
            item = failure.interaction
            status = "no response" if item.status is None else str(item.status)
            key = (failure.check, failure.operation, status, failure.key)
            entry = found.get(key)
            if entry is None:
                entry = found[key] = Contradiction(failure.check, failure.operation, status, failure)
            elif size(item) < size(entry.example.interaction):
                entry.example = failure
            entry.roles.add(item.role)
            entry.count += 1
    return sorted(found.values(), key=lambda c: (c.operation.split(" ", 1)[-1], c.operation, c.status, c.check))


def size(item: Interaction) -> int:
    return len(item.uri) + len(item.body or b"")


def in_flight(interactions: list[Interaction], when: float | None) -> Interaction | None:
    """The request being served at `when`: one worker sends one request at a time, and an interaction's timestamp
    is taken when its answer arrived, so the first one that ended after `when`."""
    if when is None:
        return None
    return next((i for i in interactions if i.timestamp >= when - 0.002), None)


def analyse(results: list[RoleResult]) -> tuple[list[Finding], list[Background]]:
    findings: dict[tuple[str, ...], Finding] = {}
    background: dict[tuple[str, str], Background] = {}
    for result in results:
        errors = parse_server_log(result.log_path)
        by_request: dict[tuple[str, str], list[LogError]] = defaultdict(list)
        for error in errors:
            if error.request:
                by_request[error.request].append(error)
        claimed: set[int] = set()
        for item in result.server_errors:
            error = None
            if item.status is not None and item.status != 503:  # 503s are answers (read-your-writes, readiness)
                queue = by_request.get((item.method, item.path))
                if queue:
                    error = queue.pop(0)
                    claimed.add(id(error))
            status = "no response" if item.status is None else str(item.status)
            key = (item.label, status, error.exception_type if error else "", error.our_frame if error else "")
            finding = findings.get(key)
            if finding is None:
                finding = findings[key] = Finding(item.label, status, error, item, result.log_path or Path())
            elif size(item) < size(finding.example):
                finding.example = item
            finding.roles.add(item.role)
            finding.count += 1
        first = True
        for error in errors:
            if id(error) in claimed:
                continue
            key = (error.exception_type, error.our_frame)
            if key not in background:
                trigger = in_flight(result.interactions, error.when)
                background[key] = Background(error, trigger, result.log_path or Path(), first)
            background[key].count += 1
            first = False
    order = sorted(findings.values(), key=lambda f: (f.error is None, f.label.split(" ", 1)[-1], f.label, f.status))
    return order, list(background.values())


SKIP_HEADERS = {"authorization", "user-agent", "accept", "accept-encoding", "connection", "content-length"}


def curl(item: Interaction, bodies: Path) -> str:
    """A reproducer: the role's token as $<ROLE>_TOKEN, and any other Authorization the request had (schemathesis
    also sends none, or a made-up one) as it was."""
    parts = ["curl", "-sS", "-i", "-X", item.method, shlex.quote(item.uri)]
    for name, values in item.headers.items():
        if name.lower() in SKIP_HEADERS or name.lower().startswith("x-schemathesis"):
            continue
        for value in values:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    for value in next((v for k, v in item.headers.items() if k.lower() == "authorization"), []):
        if item.role != "anonymous" and value == f"Bearer {item.token}":
            parts += ["-H", f'"Authorization: Bearer ${item.role.upper()}_TOKEN"']
        else:
            parts += ["-H", shlex.quote(f"Authorization: {value}")]
    if item.body:
        try:
            text = item.body.decode("utf-8")
            if "\0" in text or len(text) > 2000:
                raise ValueError
            parts += ["--data-raw", shlex.quote(text)]
        except ValueError:
            bodies.mkdir(parents=True, exist_ok=True)
            body_file = bodies / f"{item.role}-{item.case_id}.body"
            body_file.write_bytes(item.body)
            parts += ["--data-binary", shlex.quote(f"@{body_file}")]
    return " ".join(parts)


def excerpt(data: bytes, limit: int = 300) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def excerpt_lines(text: str, limit: int = 24) -> str:
    lines = text.strip().splitlines()
    return "\n".join(lines if len(lines) <= limit else [*lines[:limit], f"... {len(lines) - limit} more lines"])


def print_traceback(text: str, log_path: Path, indent: str = "      ") -> None:
    lines = text.splitlines()
    if len(lines) > TRACEBACK_LINES:
        skipped = len(lines) - TRACEBACK_LINES + 1
        lines = [lines[0], f"  ... {skipped} lines (see {log_path}) ...", *lines[-TRACEBACK_LINES + 2 :]]
    print("\n".join(f"{indent}| {ln}" for ln in lines))


def print_summary(
    backend: str,
    results: list[RoleResult],
    findings: list[Finding],
    background: list[Background],
    scratch: Path,
    contradicted: list[Contradiction] | None,  # None: the conformance checks did not run
) -> None:
    bodies = scratch / "bodies"
    print(f"\n=== fuzz summary: {backend} ===")
    for r in results:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        requests = sum(r.statuses.values())
        print(f"  {r.role:<10} {r.generated:>6} cases, {requests:>6} requests ({statuses}) in {r.seconds:.0f} s")
        print(f"  {'':<10} seed {r.seed}")
        for problem in [*r.st_errors, *([r.server_died] if r.server_died else [])]:
            print(f"  {'':<10} ! {problem}")
    traced = [f for f in findings if f.error]
    bare = [f for f in findings if not f.error]
    if not findings and not background:
        print(f"\nNo 5xx and no server errors on {backend}.")
    if contradicted == []:
        print(f"No answer on {backend} contradicts the OpenAPI document.")
    if traced:
        print(f"\n{len(traced)} distinct 5xx with a traceback on {backend}:")
    for n, f in enumerate(traced, 1):
        assert f.error is not None
        print(f"\n[{n}] {f.label}  ->  {f.status}  ({f.count} request(s); roles: {', '.join(sorted(f.roles))})")
        print(f"    exception: {f.error.exception}")
        print(f"    our code:  {f.error.our_frame}")
        if f.error.innermost and f.error.innermost != f.error.our_frame:
            print(f"    innermost: {f.error.innermost}")
        print(f"    response:  {excerpt(f.example.response)}")
        print(f"    reproduce ({f.example.role}, {f.example.phase} phase):")
        print(f"      {curl(f.example, bodies)}")
        print("    server log:")
        print_traceback(f.error.text, f.log_path)
    if bare:
        print(f"\n{len(bare)} distinct 5xx without a traceback on {backend}:")
        print("(a 503 is a write whose read-your-writes wait timed out, or readiness failing; see the server errors)")
    for n, f in enumerate(bare, len(traced) + 1):
        print(f"\n[{n}] {f.label}  ->  {f.status}  ({f.count} request(s); roles: {', '.join(sorted(f.roles))})")
        if f.example.response:
            print(f"    response:  {excerpt(f.example.response)}")
        print(f"    reproduce ({f.example.role}, {f.example.phase} phase):")
        print(f"      {curl(f.example, bodies)}")
    if background:
        print(f"\n{len(background)} distinct server error(s) logged outside a request (projection runners, ...):")
    for n, b in enumerate(background, 1):
        print(f"\n[B{n}] {b.error.exception}  (logged {b.count} time(s))")
        print(f"    our code:  {b.error.our_frame}")
        if b.error.innermost and b.error.innermost != b.error.our_frame:
            print(f"    innermost: {b.error.innermost}")
        if b.trigger is not None:
            t = b.trigger
            if b.first:
                print(f"    first logged while serving ({t.role}): {t.label} -> {t.status}, most likely its cause:")
            else:
                # A projection runner retries the batch that failed, so this may be the same event failing again.
                print(f"    first logged while serving ({t.role}): {t.label} -> {t.status} (an earlier error may be")
                print("    the cause: a failed projection batch is retried with the events that came since):")
            print(f"      {curl(t, bodies)}")
        print(f"    server log ({b.log_path}, line {b.error.line_no}):")
        print_traceback(b.error.text, b.log_path)
    if contradicted:
        print(f"\n{len(contradicted)} distinct answer(s) on {backend} that contradict the OpenAPI document:")
    for n, c in enumerate(contradicted or [], 1):
        f, item = c.example, c.example.interaction
        roles = ", ".join(sorted(c.roles))
        print(f"\n[C{n}] {c.check}: {c.operation}  ->  {c.status}  ({c.count} answer(s); roles: {roles})")
        print(f"    {f.title} ({f.kind})")
        print("\n".join(f"      | {ln}" for ln in excerpt_lines(f.message).splitlines()))
        print(f"    response:  {excerpt(item.response)}")
        print(f"    reproduce ({item.role}, {item.phase} phase):")
        print(f"      {curl(item, bodies)}")
    if (
        any(f.example.role != "anonymous" for f in findings)
        or any(b.trigger for b in background)
        or any(c.example.interaction.role != "anonymous" for c in contradicted or [])
    ):
        print(
            "\nReproducers use $SUPERUSER_TOKEN / $MANAGER_TOKEN / $STAFF_TOKEN: a token of a user of that role on a"
            " server seeded as fuzz/api.py seeds (users 1-3, and 3 of each resource)."
        )


# ------------------------------------------------------------------------------------------------------- main


def run_role(backend: str, role: str, scratch: Path, args: argparse.Namespace) -> RoleResult:
    workdir = scratch / role
    workdir.mkdir(parents=True)
    dbname = create_database(args.pg_admin) if backend == "postgres" else None
    target = Target(
        backend, args.port, workdir, server_env(backend, workdir, dbname, args.pg_admin, args.redis), dbname
    )
    try:
        cli(target, "migrate")
        cli(target, "createsuperuser", "--username", USERS["superuser"], "--password", PASSWORD, "--email",
            f"{USERS['superuser']}@example.com")  # fmt: skip
        start_server(target, args.start_timeout)
        tokens, public = seed(target)
        print(f"  {role}: server up on {target.base}, seeded; fuzzing ...", flush=True)
        return run_schemathesis(target, role, tokens.get(role), public, args)
    finally:
        stop_server(target)
        if dbname:
            drop_database(args.pg_admin, dbname)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=sorted(PORTS), required=True)
    parser.add_argument("--max-examples", type=int, default=25, help="schemathesis examples per operation and phase")
    parser.add_argument("--roles", default=",".join(ROLES), help=f"comma-separated, from {', '.join(ROLES)}")
    parser.add_argument("--phases", default="examples,coverage,fuzzing,stateful", help="schemathesis phases")
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers (1: log errors map exactly)")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis seed, for a repeatable run")
    parser.add_argument("--request-timeout", type=float, default=30.0, help="seconds before a request counts as lost")
    parser.add_argument("--start-timeout", type=float, default=90.0, help="seconds to wait for the server")
    parser.add_argument("--port", type=int, default=None, help="default 8101 (sqlite) or 8102 (postgres)")
    parser.add_argument("--pg-admin", default=PG_ADMIN, help="PostgreSQL URL used to create and drop the databases")
    parser.add_argument("--redis", default=REDIS_URL, help="Redis URL (database 13 by default) for the postgres run")
    parser.add_argument(
        "--no-hints", action="store_true", help="fuzz the served document as it is, without fuzz/hooks.py"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder even when nothing was found")
    parser.add_argument(
        "--conformance",
        action="store_true",
        help="also check every answer against the document (status, content type, headers, body schema)",
    )
    args = parser.parse_args()
    args.port = args.port or PORTS[args.backend]
    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    unknown = set(roles) - set(ROLES)
    if unknown:
        parser.error(f"unknown role(s) {', '.join(sorted(unknown))}; choose from {', '.join(ROLES)}")
    if not (BIN / "st").exists():
        parser.error(f"{BIN / 'st'} is missing: install requirements.lock (make install does)")

    scratch = Path(tempfile.mkdtemp(prefix=f"fuzz-{args.backend}-", dir="/tmp"))
    mode = ", conformance checks" if args.conformance else ""
    print(
        f"fuzz {args.backend}: roles {', '.join(roles)}, {args.max_examples} examples per operation{mode}; in {scratch}"
    )
    started = time.monotonic()
    results: list[RoleResult] = []
    status = 0
    redis_before: set[bytes] | None = None
    try:
        redis_before = redis_keys(args.redis) if args.backend == "postgres" else None
        for role in roles:
            results.append(run_role(args.backend, role, scratch, args))
    except HarnessError as exc:
        print(f"\nfuzz {args.backend}: the harness could not run: {exc}", file=sys.stderr)
        status = 2
    finally:
        if redis_before is not None:
            delete_redis_keys(args.redis, redis_keys(args.redis) - redis_before)
    findings, background = analyse(results)
    contradicted = contradictions(results) if args.conformance else None
    print_summary(args.backend, results, findings, background, scratch, contradicted)
    print(f"\nfuzz {args.backend}: {time.monotonic() - started:.0f} s in all")
    if findings or background or contradicted or any(r.server_died for r in results):
        status = max(status, 1)
    if status or args.keep:
        print(f"scratch kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
