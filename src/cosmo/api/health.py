"""Liveness and readiness (database, Redis, projections)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from cosmo.api.deps import Context

READY_MAX_LAG = 1000


class Liveness(msgspec.Struct):
    status: str


class ProjectionReadiness(msgspec.Struct, omit_defaults=True):
    """A failing projection names the event it stopped at. The error itself may quote stored data, so it is shown
    only to operators (`cosmo projections status`), not on this unauthenticated endpoint."""

    position: int
    lag: int
    failing: bool = False
    stopped_at_event: int | None = None
    rebuilding: bool = False  # its tables are from another version of its code: a rebuild is due or under way


class Checks(msgspec.Struct):
    database: str
    redis: str
    projections: dict[str, ProjectionReadiness] = {}


class Readiness(msgspec.Struct):
    status: str
    checks: Checks


@get("/api/health/", opt={"public": True}, tags=["health"], summary="Liveness")
async def health() -> Liveness:
    return Liveness("ok")


@get(
    "/api/health/ready/",
    opt={"public": True},
    tags=["health"],
    summary="Readiness: database, Redis, projections (503 when one fails, is due a rebuild for a new version, or lags"
    " more than 1,000 events)",
    responses={503: ResponseSpec(data_container=Readiness, description="Not ready: see which check failed")},
)
async def ready(ctx: NamedDependency[Context]) -> Response[Readiness]:
    healthy = True
    projections: dict[str, ProjectionReadiness] = {}
    try:
        status: list[dict[str, Any]] = await ctx.services.call(ctx.services.runtime.runner.status)
        database = "ok"
        for s in status:
            failing = s["error"] is not None
            rebuilding = s["rebuilding"]
            projections[s["name"]] = ProjectionReadiness(
                s["position"], s["lag"], failing, s["error_position"] if failing else None, rebuilding
            )
            healthy = healthy and not failing and not rebuilding and s["lag"] <= READY_MAX_LAG
    except Exception as exc:  # readiness reports failures instead of raising them
        database = f"error: {type(exc).__name__}"
        healthy = False
    redis = "not configured"
    if ctx.services.redis is not None:
        try:
            await ctx.services.redis.ping()
            redis = "ok"
        except Exception as exc:
            redis = f"error: {type(exc).__name__}"
            healthy = False
    body = Readiness("ok" if healthy else "unavailable", Checks(database, redis, projections))
    return Response(body, status_code=200 if healthy else 503)
