"""Liveness and readiness: the only routes besides discovery that need no token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.api.deps import Services
from service.api.examples import json_example

__all__ = ["router"]

router = APIRouter(tags=["health"])


class ReadyOut(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, str] = Field(description="maps: ok | not loaded; store: ok | unreachable")


@router.get("/healthz", summary="Liveness", operation_id="getLiveness",
            responses={200: json_example({"status": "ok"})})
async def healthz() -> dict[str, str]:
    """The process answers (no dependency is checked: restart it when this fails)."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: rule maps loaded and shared state reachable",
            operation_id="getReadiness", response_model=ReadyOut, responses={
                200: json_example({"status": "ready", "checks": {"maps": "ok", "store": "ok"}}),
                503: {"model": ReadyOut, "description": "Not ready: send no traffic yet"}})
async def readyz(services: Services) -> JSONResponse:
    """Ready when the rule maps have loaded and the session store (Redis, when configured)
    answers; 503 with the failing check otherwise."""
    checks: dict[str, str] = {}
    checks["maps"] = "ok" if services.ruleset is not None else "not loaded"
    checks["store"] = "ok" if await services.store.ping() else "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)
