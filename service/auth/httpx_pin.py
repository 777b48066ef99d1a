"""authlib's httpx client, on the httpx this project pins (not httpx2), without its warning.

authlib 1.9 prefers httpx2 and falls back to httpx with an ``AuthlibDeprecationWarning`` printed
at every start. We stay on httpx 0.28 for now: respx, our fault-injection tool, mocks httpx only
(respx 0.23.1), and one HTTP stack in the process keeps every ``except httpx.HTTPError`` around a
token request true. That one warning is silenced here, by its exact text, and nothing else;
``tests/auth/test_httpx_pin.py`` fails when authlib stops falling back to httpx or changes the
text, or when httpx2 appears in the environment (authlib would then switch underneath us).
"""

from __future__ import annotations

import re
import warnings

from authlib.deprecate import AuthlibDeprecationWarning

__all__ = ["AUTHLIB_HTTPX_FALLBACK", "AsyncOAuth2Client"]

AUTHLIB_HTTPX_FALLBACK = "The httpx module is deprecated; please use httpx2 instead."
"""The text authlib warns with when it falls back to httpx."""

warnings.filterwarnings("ignore", message=re.escape(AUTHLIB_HTTPX_FALLBACK),
                        category=AuthlibDeprecationWarning)

from authlib.integrations.httpx_client import AsyncOAuth2Client  # noqa: E402 - after the filter
