"""Liveness and readiness (database, Redis, projection lag)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from cosmo.api.state import services_of

READY_MAX_LAG = 1000


@get("/api/health/", opt={"public": True}, tags=["health"], summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/api/health/ready/", opt={"public": True}, tags=["health"], summary="Readiness: database, Redis, lag")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    services = services_of(request)
    checks: dict[str, Any] = {}
    healthy = True
    try:
        status = await services.call(services.runtime.runner.status)
        checks["database"] = "ok"
        checks["projections"] = {s["name"]: {"position": s["position"], "lag": s["lag"]} for s in status}
        if any(s["lag"] > READY_MAX_LAG for s in status):
            healthy = False
    except Exception as exc:  # readiness reports failures instead of raising them
        checks["database"] = f"error: {type(exc).__name__}"
        healthy = False
    if services.redis is not None:
        try:
            await services.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
            healthy = False
    else:
        checks["redis"] = "not configured"
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    return Response(body, status_code=200 if healthy else 503)
