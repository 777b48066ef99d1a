"""Builds the FastAPI application; nothing else happens here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api.routes import health
from service.config import Settings, get_settings
from service.screening.ruleset import load_ruleset

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A malformed map must stop start-up, so it is loaded before the first request.
        app.state.ruleset = load_ruleset()
        yield

    app = FastAPI(
        title="Ketamine screening",
        version=__version__,
        summary="Ketamine / esketamine suitability screening for SMART-on-FHIR EHRs",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(health.router)
    return app
