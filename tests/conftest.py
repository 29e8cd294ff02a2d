"""Fixtures: every storage-dependent test runs on SQLite and on PostgreSQL + Redis.

Each PostgreSQL test gets a database of its own (COSMO_TEST_DB_PREFIX + a random suffix), created and dropped around
it. Redis is never flushed: each test deployment's keys and channels carry the prefix derived from its own database.
With COSMO_REQUIRE_SERVICES=1 (CI) a missing PostgreSQL or Redis fails the run instead of skipping half of it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from litestar.testing import TestClient

from cosmo.api.app import create_app
from cosmo.config import Settings, load_settings
from cosmo.domain.actors import SYSTEM
from cosmo.runtime import Runtime

PG_ADMIN = os.environ.get("COSMO_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("COSMO_TEST_REDIS", "redis://127.0.0.1:6379/15")
DB_PREFIX = os.environ.get("COSMO_TEST_DB_PREFIX", "cosmo_test_")
REQUIRE = os.environ.get("COSMO_REQUIRE_SERVICES") == "1"
SECRET = "test-secret-key-that-is-long-enough-for-hs256"
PASSWORD = "Correct-horse-9"


def _services_up() -> str | None:
    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN}: {exc}"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"
    return None


_SERVICES_PROBLEM = _services_up()


def _pg_database() -> Iterator[str]:
    if _SERVICES_PROBLEM:
        if REQUIRE:
            pytest.fail(_SERVICES_PROBLEM)
        pytest.skip(_SERVICES_PROBLEM)
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_database() -> Iterator[str]:
    yield from _pg_database()


@pytest.fixture
def other_pg_database() -> Iterator[str]:
    """A second database on the same server: a second deployment."""
    yield from _pg_database()


@dataclass
class Backend:
    name: str
    env: dict[str, str]

    def settings(self, **overrides: str) -> Settings:
        return load_settings({**self.env, **overrides})


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    env = {
        "COSMO_SECRET_KEY": SECRET,
        "COSMO_PASSWORD_COST": "low",
        "COSMO_MEDIA_ROOT": str(tmp_path / "media"),
        "COSMO_PUBLIC_URL": "http://testserver.local",
        # Generous limits by default; the throttle tests set their own.
        "COSMO_THROTTLE_AUTH": "1000/minute",
        "COSMO_THROTTLE_REFRESH": "1000/minute",
        "COSMO_THROTTLE_USER": "100000/hour",
    }
    if request.param == "sqlite":
        env["COSMO_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cosmo.db'}"
    else:
        env["COSMO_DATABASE_URL"] = request.getfixturevalue("pg_database")
        env["COSMO_REDIS_URL"] = REDIS_URL
    return Backend(request.param, env)


@pytest.fixture
def runtime(backend: Backend) -> Iterator[Runtime]:
    rt = Runtime(backend.settings())
    rt.start()
    yield rt
    rt.close()


class Api:
    """A TestClient with the helpers most tests need."""

    def __init__(self, client: TestClient, runtime: Runtime):
        self.client = client
        self.runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        r = self.client.post("/api/token/", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return r.json()

    def auth(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(username, password)['access']}"}

    def make_user(self, username: str, role: str, task_group: str = "general", email: str | None = None) -> int:
        return self.runtime.command(
            lambda: self.runtime.commands.identity.create_user(
                SYSTEM,
                username=username,
                email=email if email is not None else f"{username}@example.com",
                password=PASSWORD,
                role=role,
                task_group=task_group,
            )
        )


def make_api(backend: Backend, **overrides: str) -> Iterator[Api]:
    settings = backend.settings(**overrides)
    runtime = Runtime(settings)
    app = create_app(settings, runtime=runtime)
    with TestClient(app) as client:
        yield Api(client, runtime)
    runtime.close()


@pytest.fixture
def api(backend: Backend) -> Iterator[Api]:
    yield from make_api(backend)


@pytest.fixture
def admin(api: Api) -> dict[str, str]:
    """Authorization headers of a superuser named `admin`."""
    api.make_user("admin", "superuser", "none")
    return api.auth("admin")
