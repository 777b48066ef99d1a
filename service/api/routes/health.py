"""Liveness and readiness: the only routes besides discovery that need no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: rule maps loaded and shared state reachable")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    ruleset = getattr(request.app.state, "ruleset", None)
    checks["maps"] = "ok" if ruleset is not None else "not loaded"
    store = getattr(request.app.state, "store", None)
    if store is not None:
        checks["store"] = "ok" if await store.ping() else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
