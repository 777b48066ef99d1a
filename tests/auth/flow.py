"""Helpers that walk a SMART launch the way a browser would (test use only)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def authorize(app: httpx.AsyncClient, browser: httpx.AsyncClient, launch_path: str,
                    params: dict[str, str]) -> tuple[str, dict[str, str]]:
    """GET the app's launch URL, follow it to the authorize endpoint; the callback URL back."""
    started = await app.get(launch_path, params=params)
    assert started.status_code == 302, started.text
    authorize_url = started.headers["location"]
    approved = await browser.get(authorize_url)
    assert approved.status_code == 302, approved.text
    callback = approved.headers["location"]
    return callback, query(authorize_url)


async def callback(app: httpx.AsyncClient, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    return await app.get(f"{parts.path}?{parts.query}")
