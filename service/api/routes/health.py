"""Liveness and readiness: the only routes besides discovery that need no token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.api.deps import Services

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: rule maps loaded and shared state reachable")
async def readyz(services: Services) -> JSONResponse:
    checks: dict[str, str] = {}
    checks["maps"] = "ok" if services.ruleset is not None else "not loaded"
    checks["store"] = "ok" if await services.store.ping() else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
