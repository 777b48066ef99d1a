"""The URL checks that keep our tokens at home: trusted FHIR servers and same-origin links.

Every server this service talks to with a token is one of a configured list
(``KETAMINE_ALLOWED_ISSUERS`` for FHIR servers, ``KETAMINE_CDS_ALLOWED_ISSUERS`` for CDS clients);
:func:`trusted` is the one comparison against such a list. Links a server hands back (``next``
pages, export status and file URLs, a JWT's ``jku``) are followed with a token only when
:func:`same_origin` holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["normalise_issuer", "same_origin", "trusted"]


def normalise_issuer(iss: str) -> str:
    """``https://ehr.example/fhir/`` and `` https://ehr.example/fhir`` name the same server.

    >>> normalise_issuer(" https://ehr.example/fhir/ ")
    'https://ehr.example/fhir'
    """
    return iss.strip().rstrip("/")


def trusted(url: str | None, allowed: Iterable[str]) -> str | None:
    """``url`` normalised when it is one of ``allowed``, else None.

    >>> trusted("https://ehr.example/fhir/", ["https://ehr.example/fhir"])
    'https://ehr.example/fhir'
    >>> trusted("https://evil.example/fhir", ["https://ehr.example/fhir"]) is None
    True
    """
    if not url:
        return None
    wanted = normalise_issuer(url)
    return wanted if wanted in {normalise_issuer(a) for a in allowed} else None


def same_origin(url: str, base_url: str) -> bool:
    """True when ``url`` is on the server at ``base_url`` (scheme, host and port agree).

    >>> same_origin("https://ehr.example/fhir?page=2", "https://ehr.example/fhir/")
    True
    >>> same_origin("https://ehr.example:8443/fhir", "https://ehr.example/fhir")
    False
    """
    a, b = urlsplit(url), urlsplit(base_url)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
