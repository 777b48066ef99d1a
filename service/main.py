"""Builds the FastAPI application; nothing else happens here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from service import __version__
from service.api.audit import AuditMiddleware
from service.api.contract import DESCRIPTION, install_contract
from service.api.errors import install_errors
from service.api.limits import BodyDeadlineMiddleware, RouteGateMiddleware
from service.api.middleware import RequestIdMiddleware, SecurityHeadersMiddleware, ServiceApp
from service.api.observe import ObserveMiddleware
from service.api.routes import (
    cds,
    course,
    demo,
    health,
    launch,
    pages,
    ruleset,
    screenings,
    sessions,
)
from service.api.services import build_services
from service.api.templates import PACKAGE_DIR
from service.config import Settings, get_settings
from service.config_report import refuse_unsafe_production
from service.logs import set_pseudonym_key
from service.metrics import serve_metrics
from service.screening.ruleset import load_ruleset

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    refuse_unsafe_production(settings)
    set_pseudonym_key(settings.log_pseudonym_key)
    services = build_services(settings)
    if settings.demo:
        services.page_source = demo.demo_pages(settings, services.page_source)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A malformed map must stop start-up, so it is loaded before the first request.
        services.ruleset, _ = load_ruleset()
        metrics = None
        if settings.metrics_port is not None:
            metrics = serve_metrics(settings.metrics_host, settings.metrics_port)
        try:
            yield
        finally:
            if metrics is not None:
                metrics.close()
            await services.audit.aclose()
            await services.fhir.aclose()
            await services.store.close()

    production = settings.environment == "production"
    # No /docs or /redoc: FastAPI's pages load their scripts from a CDN. The schema is committed
    # (openapi/openapi.json) and served outside production.
    app = ServiceApp(
        title="Ketamine screening",
        version=__version__,
        summary="Ketamine / esketamine suitability screening for SMART-on-FHIR EHRs",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None if production else "/openapi.json",
    )
    hsts = settings.base_url.startswith("https://")

    def security_headers(inner: ASGIApp) -> ASGIApp:
        return SecurityHeadersMiddleware(inner, settings.frame_ancestors, hsts=hsts)

    def audited(inner: ASGIApp) -> ASGIApp:
        return AuditMiddleware(inner, services.audit)

    # Outside everything FastAPI builds: every answer (a 500, a refused body) has the request
    # id, its access line and metrics and the security headers; every access its audit record.
    app.outermost = [RequestIdMiddleware, ObserveMiddleware, security_headers, audited]
    app.state.services = services
    app.add_middleware(RouteGateMiddleware, settings=settings, heavy=services.heavy)
    app.add_middleware(BodyDeadlineMiddleware, seconds=settings.body_timeout_seconds)
    install_errors(app)
    app.include_router(health.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(course.router)
    if settings.demo:
        app.include_router(demo.router)
    app.include_router(launch.router)
    app.include_router(launch.api_router)
    app.include_router(screenings.router)
    app.include_router(ruleset.router)
    app.include_router(sessions.router)
    app.include_router(cds.router)
    install_contract(app)
    return app
