"""Liveness and readiness (database, Redis, projection lag)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from cosmo.api.state import services_of

READY_MAX_LAG = 1000


def _projection(status: dict[str, Any]) -> dict[str, Any]:
    """A projection's readiness. A failing one names the event it stopped at; the error itself may quote stored
    data, so it is shown only to operators (`cosmo projections status`), not on this unauthenticated endpoint."""
    out: dict[str, Any] = {"position": status["position"], "lag": status["lag"]}
    if status["error"] is not None:
        out["failing"] = True
        out["stopped_at_event"] = status["error_position"]
    return out


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
        checks["projections"] = {s["name"]: _projection(s) for s in status}
        if any(s["lag"] > READY_MAX_LAG or s["error"] is not None for s in status):
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
