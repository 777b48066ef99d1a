"""Search result pages, followed to the end (https://hl7.org/fhir/R4/http.html#paging).

A search answers with a ``searchset`` Bundle whose ``link[relation=next]`` points at the next page.
Pages are followed until there is no ``next``; a page that fails fails the whole search (a partial
read must never reach the rules). ``next`` links must stay on the server's origin: following one
elsewhere would hand our bearer token to another host. Entries carry ``search.mode``: ``match`` for
hits, ``include`` for ``_include`` targets, ``outcome`` for warnings
(https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.errors import FhirProtocolError
from service.urls import same_origin

__all__ = ["MAX_PAGES", "SearchResult", "collect_pages", "pages"]

log = logging.getLogger(__name__)

MAX_PAGES = 1000
"""A server that keeps answering with ``next`` beyond this is broken (or looping)."""

FetchPage = Callable[[str], Awaitable[Mapping[str, Any]]]


@dataclass(slots=True)
class SearchResult:
    matches: list[dict[str, Any]] = field(default_factory=list)
    includes: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0


async def pages(first: Mapping[str, Any], *, base_url: str, fetch_page: FetchPage,
                what: str) -> AsyncIterator[Mapping[str, Any]]:
    """``first`` and every page after it; ``fetch_page`` GETs an absolute ``next`` URL."""
    page = first
    seen: set[str] = set()
    count = 0
    while True:
        if page.get("resourceType") != "Bundle":
            raise FhirProtocolError(f"search {what} answered with {page.get('resourceType')!r}, "
                                    "not a Bundle")
        count += 1
        yield page
        next_url = _next_link(page)
        if next_url is None:
            return
        if not same_origin(next_url, base_url):
            raise FhirProtocolError(f"search {what}: next page link leaves the server")
        if next_url in seen or count >= MAX_PAGES:
            raise FhirProtocolError(f"search {what}: paging does not end")
        seen.add(next_url)
        page = await fetch_page(next_url)


async def collect_pages(first: Mapping[str, Any], *, base_url: str, fetch_page: FetchPage,
                        what: str) -> SearchResult:
    """Every entry of a search, starting from its first page ``first``, sorted by search mode."""
    result = SearchResult()
    async for page in pages(first, base_url=base_url, fetch_page=fetch_page, what=what):
        result.pages += 1
        for entry in page.get("entry") or []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                continue
            mode = (entry.get("search") or {}).get("mode", "match")
            if mode == "include":
                result.includes.append(resource)
            elif mode == "outcome" or resource.get("resourceType") == "OperationOutcome":
                log.info("search %s returned an OperationOutcome entry", what)
            else:
                result.matches.append(resource)
    return result


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None
