"""The contract's error shapes for each kind of bad request, and rate limits."""

from __future__ import annotations

import uuid

import anyio
import redis
import redis.asyncio
from litestar import get

from cosmo.api.errors import Throttled
from cosmo.api.throttle import Throttle, lease
from cosmo.config import Rate
from tests.conftest import PASSWORD, REDIS_URL, SECRET, Api, Backend, make_api


def test_error_shapes(api: Api, admin: dict[str, str]) -> None:
    r = api.post("/api/token/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "Validation failed" and r.json()["details"]["non_field_errors"]
    r = api.post("/api/token/", json={"username": 5, "password": "x"})
    assert r.status_code == 400 and r.json()["details"] == {"username": ["Expected `str`, got `int`"]}
    r = api.post("/api/token/", json={"username": "x"})
    assert r.json() == {"error": "Validation failed", "details": {"password": ["This field is required."]}}
    r = api.post("/api/token/", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "detail" in r.json()
    assert api.get("/api/nothing-here/").json() == {"detail": "Not found."}
    r = api.delete("/api/token/")
    assert r.status_code == 405 and r.json() == {"detail": 'Method "DELETE" not allowed.'}
    r = api.get("/api/users/me/", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401 and set(r.json()) == {"detail"}


def test_internal_errors_have_no_traceback(backend: Backend) -> None:
    for api in make_api(backend):

        @get("/api/boom/", opt={"public": True})
        async def boom() -> None:
            raise RuntimeError("secret internals")

        api.client.app.register(boom)
        r = api.get("/api/boom/")
        assert r.status_code == 500
        assert r.json() == {"error": "Internal server error", "detail": "An unexpected error occurred."}


def test_auth_throttle_per_ip_counts_refused_requests(backend: Backend) -> None:
    for api in make_api(backend, COSMO_THROTTLE_AUTH="5/hour"):
        codes = [api.post("/api/token/", json={"username": "x", "password": "y"}).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        r = api.post("/api/token/", json={"username": "x", "password": "y"})
        assert r.status_code == 429
        wait = int(r.headers["Retry-After"])
        assert 1 <= wait <= 3600
        assert r.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}


def test_refresh_throttle_per_token_and_user_throttle(backend: Backend) -> None:
    for api in make_api(backend, COSMO_THROTTLE_REFRESH="2/hour", COSMO_THROTTLE_USER="3/hour"):
        api.make_user("jo", "staff")
        tokens = api.login("jo")
        assert api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}).status_code == 200
        assert api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}).status_code == 401
        assert api.post("/api/token/refresh/", json={"refresh": tokens["refresh"]}).status_code == 429
        headers = {"Authorization": f"Bearer {tokens['access']}"}
        codes = [api.get("/api/users/me/", headers=headers).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]


def test_throttle_is_shared_between_processes_through_redis(pg_database: str, tmp_path) -> None:
    backend = Backend(
        "postgres",
        {
            "COSMO_SECRET_KEY": SECRET,
            "COSMO_PASSWORD_COST": "low",
            "COSMO_DATABASE_URL": pg_database,
            "COSMO_REDIS_URL": REDIS_URL,
            "COSMO_MEDIA_ROOT": str(tmp_path),
        },
    )
    first = make_api(backend, COSMO_THROTTLE_AUTH="4/hour")
    second = make_api(backend, COSMO_THROTTLE_AUTH="4/hour")
    a, b = next(first), next(second)
    try:
        bad = {"username": "x", "password": PASSWORD}
        codes = [(a if i % 2 else b).post("/api/token/", json=bad).status_code for i in range(5)]
        assert codes == [401, 401, 401, 401, 429]
    finally:
        for gen in (first, second):
            next(gen, None)


def test_leased_counts_never_exceed_a_shared_limit(pg_database: str) -> None:
    """Two processes (two Throttles on one Redis) spending leases for a large limit: together they admit no more
    than the limit, lose at most a lease per process, and keep refusing once it is spent."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    rate = Rate(1000, 3600)
    size = lease(rate.limit)
    assert size > 1

    async def run() -> tuple[int, int, list[bool]]:
        prefix = f"test-{uuid.uuid4().hex}:"
        first, second = Throttle(client, prefix), Throttle(client, prefix)
        admitted = refused = 0
        for i in range(1200):
            try:
                await (first if i % 3 else second).hit("user", "7", rate)
                admitted += 1
            except Throttled:
                refused += 1
        after = []
        for throttle in (first, second):
            try:
                await throttle.hit("user", "7", rate)
                after.append(True)
            except Throttled:
                after.append(False)
        return admitted, refused, after

    admitted, refused, after = anyio.run(run)
    assert rate.limit - 2 * (size - 1) <= admitted <= rate.limit
    assert admitted + refused == 1200
    assert after == [False, False]
