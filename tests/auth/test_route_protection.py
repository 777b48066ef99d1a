"""Walks every route of the app: each one not on the public list refuses a request without
credentials (401), and with made-up credentials too. Future routes are covered automatically."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from service.api.deps import PUBLIC_ROUTES, is_public
from service.config import Settings
from service.main import create_app


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route, included routers flattened (FastAPI >= 0.16x wraps them)."""
    found: list[tuple[str, str]] = []
    for context in iter_route_contexts(app.routes):
        path = context.path
        if not path:
            continue
        if context.methods is None:  # a Mount (static files, sub-app): probe below it
            found.append(("GET", path.rstrip("/") + "/x"))
            continue
        found += [(m, path) for m in sorted(context.methods) if m != "HEAD"]
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


async def test_every_non_public_route_needs_credentials(settings: Settings) -> None:
    app = create_app(settings)
    routes = _routes(app)
    assert ("GET", "/api/v1/whoami") in routes and ("GET", "/app") in routes
    checked = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as client:
        for method, path in routes:
            if is_public(method, path):
                continue
            url = _concrete(path)
            bare = await client.request(method, url)
            assert bare.status_code == 401, f"{method} {path} answered {bare.status_code}"
            client.cookies.set("ketamine-sid", "A" * 43)
            forged = await client.request(
                method, url, headers={"Authorization": "Bearer forged"}, params={"ctx": "forged"})
            client.cookies.clear()
            assert forged.status_code == 401, f"{method} {path} accepted made-up credentials"
            checked += 1
    assert checked >= 2


def test_public_list_is_small_and_explicit() -> None:
    assert set(PUBLIC_ROUTES) == {
        "/healthz", "/readyz", "/cds-services", "/openapi.json", "/launch",
        "/launch/standalone", "/callback"}
    assert not is_public("POST", "/cds-services")
    assert not is_public("POST", "/launch")
    assert is_public("GET", "/.well-known/jwks.json")
    assert not is_public("GET", "/app")
