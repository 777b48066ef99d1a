"""The one browser cookie: an opaque random id, HttpOnly, Secure, SameSite=None, Partitioned.

SameSite=None lets it travel inside the EHR's iframe; ``Partitioned`` (CHIPS) keeps it working
where third-party cookies are otherwise blocked. With ``KETAMINE_COOKIE_SECURE=false`` (plain-HTTP
development only) browsers refuse SameSite=None, so Lax is used instead.
"""

from __future__ import annotations

import re
import secrets

from fastapi import Request, Response

from service.config import Settings

__all__ = ["browser_id", "cookie_name", "ensure_browser_id"]

_VALID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def cookie_name(settings: Settings) -> str:
    # __Host- prefix: Secure, Path=/, no Domain, so a sibling host cannot plant or read it.
    return "__Host-ketamine-sid" if settings.cookie_secure else "ketamine-sid"


def browser_id(request: Request, settings: Settings) -> str | None:
    value = request.cookies.get(cookie_name(settings))
    return value if value and _VALID.match(value) else None


def ensure_browser_id(request: Request, response: Response, settings: Settings) -> str:
    """The existing id (so parallel launches in two tabs both work) or a fresh one."""
    value = browser_id(request, settings) or secrets.token_urlsafe(32)
    attributes = [f"{cookie_name(settings)}={value}", "Path=/",
                  f"Max-Age={settings.session_ttl_seconds}", "HttpOnly"]
    if settings.cookie_secure:
        # Written by hand: Starlette's set_cookie supports Partitioned on Python 3.14+ only.
        attributes += ["Secure", "SameSite=None", "Partitioned"]
    else:
        attributes.append("SameSite=Lax")
    response.headers.append("set-cookie", "; ".join(attributes))
    return value
