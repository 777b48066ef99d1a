"""Search result pages, followed to the end (https://hl7.org/fhir/R4/http.html#paging).

A search answers with a ``searchset`` Bundle whose ``link[relation=next]`` points at the next page.
Pages are followed until there is no ``next``; a page that fails fails the whole search (a partial
read must never reach the rules). ``next`` links must stay on the server's origin: following one
elsewhere would hand our bearer token to another host. Entries carry ``search.mode``: ``match`` for
hits, ``include`` for ``_include`` targets, ``outcome`` for warnings
(https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode).

Each page is decoded once, straight from the response bytes: into the read model
(:func:`search_page`, what screening reads) or, for what is not screened (the charts' history),
into plain JSON objects (:class:`JsonPage`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import httpx

from service.errors import BundleError, FhirNotFound, FhirProtocolError, FhirRejected, PagingRefused
from service.fhir.http import json_body
from service.fhir.projection import Projected
from service.fhir.read_bundle import DecodedBundle, decode_bundle
from service.screening.model import ReadProblem
from service.urls import same_origin

__all__ = ["MAX_PAGES", "JsonPage", "SearchResult", "json_page", "pages", "search_page"]

log = logging.getLogger(__name__)

MAX_PAGES = 1000
"""A server that keeps answering with ``next`` beyond this is broken (or looping)."""


class Page(Protocol):
    @property
    def next_url(self) -> str | None: ...


P = TypeVar("P", bound=Page)


@dataclass(slots=True)
class SearchResult:
    """Every entry of a search, sorted by search mode, in the read model."""

    matches: list[Projected] = field(default_factory=list)
    includes: list[Projected] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    """Entries that could not be read (never dropped silently: they reach the findings)."""
    pages: int = 0

    def add(self, page: DecodedBundle, what: str) -> None:
        self.pages += 1
        self.problems += page.problems
        for entry in page.entries:
            resource = entry.resource
            if resource is None:
                continue
            mode = entry.mode
            if mode == "include":
                self.includes.append(resource)
            elif mode == "outcome" or resource.get_resource_type() == "OperationOutcome":
                log.info("search %s returned an OperationOutcome entry", what)
            else:
                self.matches.append(resource)


@dataclass(frozen=True, slots=True)
class JsonPage:
    """A search page as plain JSON: its ``match`` resources and its ``next`` link."""

    matches: list[dict[str, Any]]
    next_url: str | None


def _not_a_bundle(response: httpx.Response, what: str, err: BundleError) -> FhirProtocolError:
    # The rare way: decoded once more, untyped, to say what the answer was instead.
    data = json_body(response, what=what)
    if data["resourceType"] == "Bundle":
        return FhirProtocolError(f"search {what}: {str(err).removeprefix(what + ': ')}")
    return FhirProtocolError(f"search {what} answered with {data['resourceType']!r}, "
                             "not a Bundle")


def search_page(response: httpx.Response, what: str) -> DecodedBundle:
    """One page (a 2xx answer) in the read model; FhirProtocolError when it is not a Bundle."""
    try:
        return decode_bundle(response.content, what)
    except BundleError as err:
        raise _not_a_bundle(response, what, err) from None


def json_page(response: httpx.Response, what: str) -> JsonPage:
    """One page (a 2xx answer) as JSON objects; FhirProtocolError when it is not a Bundle."""
    data = json_body(response, what=what)
    if data["resourceType"] != "Bundle":
        raise FhirProtocolError(f"search {what} answered with {data['resourceType']!r}, "
                                "not a Bundle")
    matches: list[dict[str, Any]] = []
    for entry in data.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        search = entry.get("search") if isinstance(entry, dict) else None
        mode = search.get("mode", "match") if isinstance(search, dict) else "match"
        if isinstance(resource, dict) and mode == "match" \
                and resource.get("resourceType") != "OperationOutcome":
            matches.append(resource)
    next_url = None
    for link in data.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            next_url = str(link["url"])
            break
    return JsonPage(matches, next_url)


async def pages(first: P, *, base_url: str, fetch_page: Callable[[str], Awaitable[P]],
                what: str) -> AsyncIterator[P]:
    """``first`` and every page after it; ``fetch_page`` GETs an absolute ``next`` URL."""
    page = first
    seen: set[str] = set()
    count = 0
    while True:
        count += 1
        yield page
        next_url = page.next_url
        if next_url is None:
            return
        if not same_origin(next_url, base_url):
            raise FhirProtocolError(f"search {what}: next page link leaves the server")
        if next_url in seen or count >= MAX_PAGES:
            raise FhirProtocolError(f"search {what}: paging does not end")
        seen.add(next_url)
        try:
            page = await fetch_page(next_url)
        except (FhirNotFound, FhirRejected) as exc:
            raise PagingRefused(
                f"search {what}: the FHIR server refused its own next-page link (HTTP "
                f"{exc.status}); the pages read before it were not screened",
                status=exc.status) from exc
