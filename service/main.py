"""Builds the FastAPI application; nothing else happens here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.api.errors import install_errors
from service.api.routes import cds, health, launch, ruleset, screenings, sessions
from service.api.routes.pages import install_pages
from service.auth.web import install_auth
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
        await app.state.store.close()

    app = FastAPI(
        title="Ketamine screening",
        version=__version__,
        summary="Ketamine / esketamine suitability screening for SMART-on-FHIR EHRs",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_auth(app, settings)
    install_errors(app)
    app.include_router(health.router)
    install_pages(app, settings)
    app.include_router(launch.router)
    app.include_router(launch.api_router)
    app.include_router(screenings.router)
    app.include_router(ruleset.router)
    app.include_router(sessions.router)
    app.include_router(cds.router)
    return app
