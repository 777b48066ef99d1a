"""Wires authentication into the app: store, SMART client, API token checks, headers, handlers."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from service.auth.api_tokens import ApiTokenVerifier
from service.auth.headers import SecurityHeadersMiddleware
from service.auth.launch import TokenEndpointUnavailable
from service.auth.problems import BearerError, bearer_error_handler, launch_error_page
from service.auth.session import SessionExpired
from service.auth.smart import SmartApp
from service.config import Settings
from service.errors import LaunchError
from service.state import make_store

__all__ = ["install_auth"]


def install_auth(app: FastAPI, settings: Settings) -> None:
    """Call once from ``create_app``; the lifespan closes ``app.state.store``."""
    store = make_store(settings)
    app.state.store = store
    app.state.smart = SmartApp(settings, store)
    app.state.api_tokens = ApiTokenVerifier(settings)
    app.add_exception_handler(BearerError, bearer_error_handler)
    app.add_exception_handler(LaunchError, _launch_error)
    app.add_exception_handler(SessionExpired, _session_error)
    app.add_middleware(SecurityHeadersMiddleware, frame_ancestors=settings.frame_ancestors)


async def _launch_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LaunchError)  # noqa: S101 - registered for LaunchError only
    status = 502 if isinstance(exc, TokenEndpointUnavailable) else 400
    return launch_error_page(request, exc, status)


async def _session_error(request: Request, exc: Exception) -> Response:
    """A browser session that is missing, expired or can no longer be refreshed."""
    assert isinstance(exc, SessionExpired)  # noqa: S101 - registered for SessionExpired only
    return launch_error_page(request, exc, 401)
