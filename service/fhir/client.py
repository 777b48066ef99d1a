"""Async FHIR R4 client: an ``httpx.AsyncClient`` (its own, or a shared pool), bounded retries,
FHIR error mapping; answers decoded once, straight into the read model where they are screened.

Used as ``async with FhirClient(base_url, auth=...) as fhir:`` then
``data = await fhir.read_patient_data(...)``.
Reads follow the RESTful API (https://hl7.org/fhir/R4/http.html): ``read``, ``search`` with paging,
``_include`` (https://hl7.org/fhir/R4/search.html#include) where the CapabilityStatement lists it,
and ``transaction`` (https://hl7.org/fhir/R4/http.html#transaction) for writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx
import msgspec

from service.config import Settings, get_settings
from service.errors import (
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    PagingRefused,
    reported_error,
)
from service.fhir import record
from service.fhir.capabilities import Capabilities, cached_capabilities
from service.fhir.http import RetryPolicy, SendHook, check_response, json_body, send_with_retry
from service.fhir.paging import JsonPage, SearchResult, json_page, pages, search_page
from service.fhir.projection import Projected, decode_resource
from service.fhir.read_bundle import DecodedBundle
from service.fhir.references import MEDICATION_BATCH, resource_path
from service.logs import pseudonym
from service.screening.model import RawPatientData, ReadProblem

__all__ = ["FhirClient"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class FhirClient:
    """One FHIR server session (one auth, one request id). Not safe to share across event loops.

    ``http`` is a connection pool to share (:class:`service.clients.FhirClients` keeps one per
    server for the app): the session then sends on it with its own auth and headers and leaves it
    open when closed. Without one, the session owns a client of its own (``transport`` is its
    test seam) and closes it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        settings: Settings | None = None,
        auth: httpx.Auth | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        page_size: int | None = None,
        capabilities: Capabilities | None = None,
        on_request: Sequence[SendHook] = (),
        request_id: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        """``capabilities`` stands in for the server's CapabilityStatement (the per-server cache is
        then neither read nor filled): a seam for tests of the search fallbacks, and for servers
        whose statement is known to be wrong. ``on_request`` hooks see every request as it is
        sent, retries included. ``request_id`` is sent as ``X-Request-ID`` on every request (the
        id of the request we are serving, so the EHR's logs and ours meet); without it each
        request gets a fresh id.
        """
        settings = settings or get_settings()
        self.base_url = base_url.rstrip("/") + "/"
        self.page_size = page_size or settings.fhir_page_size
        self.retry = retry or RetryPolicy(max_retries=settings.fhir_max_retries)
        self._capabilities = capabilities
        self._auth = auth
        self._hooks = tuple(on_request)
        self.requests_sent = 0
        """HTTP requests put on the wire, retries included (for measurements and tests)."""
        self._headers = {"Accept": FHIR_JSON}
        if request_id:
            self._headers["X-Request-ID"] = request_id
        self._own = http is None
        self._http = http if http is not None else httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(settings.fhir_timeout_seconds),
            follow_redirects=False,
        )

    async def _before_send(self, request: httpx.Request) -> None:
        self.requests_sent += 1
        for hook in self._hooks:
            await hook(request)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own:
            await self._http.aclose()

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def timeout(self) -> httpx.Timeout:
        return self._http.timeout

    def _request(self, method: str, url: str, *,
                 params: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
                 body: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> httpx.Request:
        sent = {**self._headers, **(headers or {})}
        content = None
        if body is not None:
            sent.setdefault("Content-Type", FHIR_JSON)
            content = msgspec.json.encode(body)
        query = None
        if params:
            query = httpx.QueryParams(params if isinstance(params, Mapping) else list(params))
        return self._http.build_request(method, httpx.URL(self.base_url).join(url),
                                        params=query, content=content, headers=sent)

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Sequence[tuple[str, str]] | Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool,
    ) -> httpx.Response:
        """One request on this session (same auth, limits and request id), retried when
        ``retry`` (idempotent requests only). The answer is returned whatever its status;
        transport failures raise FhirTimeout / FhirUnavailable."""
        request = self._request(method, url, params=params, body=body, headers=headers)
        return await send_with_retry(self._http, request, policy=self.retry, retry=retry,
                                     auth=self._auth, before_send=self._before_send)

    @asynccontextmanager
    async def stream(self, url: str, *, headers: Mapping[str, str] | None = None
                     ) -> AsyncIterator[httpx.Response]:
        """``GET url`` on this session with the body left unread (``aiter_bytes`` it)."""
        request = self._request("GET", url, headers=headers)
        await self._before_send(request)
        response = await self._http.send(request, auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                                         stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    async def get_json(
        self, url: str, params: Sequence[tuple[str, str]] | None = None, *, what: str
    ) -> dict[str, Any]:
        """GET (retried) and return the JSON object; maps every failure to a FhirError."""
        response = await self.send("GET", url, params=params, retry=True)
        check_response(response, what=what)
        return json_body(response, what=what)

    async def capabilities(self) -> Capabilities:
        """The server's CapabilityStatement, read once per base URL for the whole process."""
        if self._capabilities is not None:
            return self._capabilities

        async def fetch() -> dict[str, Any]:
            try:
                return await self.get_json("metadata", what="metadata")
            except (FhirNotFound, FhirRejected, FhirProtocolError) as exc:
                log.warning("no usable CapabilityStatement (%s, HTTP %s); assuming standard "
                            "search", type(exc).__name__, exc.status)
                return {}

        return await cached_capabilities(self.base_url, fetch)

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """``GET [base]/[type]/[id]``; InputError, and nothing sent, when the id is not one."""
        path = resource_path(resource_type, resource_id)
        return await self.get_json(path, what=path)

    async def read_record(self, resource_type: str, resource_id: str
                          ) -> tuple[Projected | None, ReadProblem | None]:
        """``GET [type]/[id]`` in the read model, or the problem that makes it unreadable;
        InputError, and nothing sent, when the id is not one."""
        what = resource_path(resource_type, resource_id)
        response = await self.send("GET", what, retry=True)
        check_response(response, what=what)
        resource, problem = decode_resource(response.content)
        if problem is not None and "/" not in problem.reference:
            json_body(response, what=what)  # not JSON, not a resource: a protocol error
        return resource, problem

    async def _page(self, url: str, params: Sequence[tuple[str, str]] | None,
                    what: str) -> DecodedBundle:
        response = await self.send("GET", url, params=params, retry=True)
        check_response(response, what=what)
        return search_page(response, what)

    async def search_pages(self, resource_type: str, params: Sequence[tuple[str, str]]
                           ) -> AsyncIterator[DecodedBundle]:
        """Each page of ``GET [base]/[type]?params`` (``_count`` set to the page size), decoded
        into the read model as it arrives."""
        what = resource_type
        first = await self._page(resource_type, [*params, ("_count", str(self.page_size))], what)

        async def fetch_page(url: str) -> DecodedBundle:
            return await self._page(url, None, what)

        async for page in pages(first, base_url=self.base_url, fetch_page=fetch_page, what=what):
            yield page

    async def search(
        self, resource_type: str, params: Sequence[tuple[str, str]]
    ) -> SearchResult:
        """Every page of ``GET [base]/[type]?params`` in the read model. A refused ``next``
        link (quirk "refused next link") starts the search once more from its first page."""
        try:
            return await self._search_once(resource_type, params)
        except PagingRefused as exc:
            log.info("search %s: next link refused (HTTP %s), searching again", resource_type,
                     exc.status)
            return await self._search_once(resource_type, params)

    async def _search_once(self, resource_type: str, params: Sequence[tuple[str, str]]
                           ) -> SearchResult:
        result = SearchResult()
        async for page in self.search_pages(resource_type, params):
            result.add(page, resource_type)
        return result

    async def search_json(
        self, resource_type: str, params: Sequence[tuple[str, str]]
    ) -> list[dict[str, Any]]:
        """The matches of every page as JSON objects, for what is not screened (the charts)."""
        what = resource_type

        async def fetch_page(url: str, query: Sequence[tuple[str, str]] | None = None
                             ) -> JsonPage:
            response = await self.send("GET", url, params=query, retry=True)
            check_response(response, what=what)
            return json_page(response, what)

        first = await fetch_page(resource_type, [*params, ("_count", str(self.page_size))])
        found: list[dict[str, Any]] = []
        async for page in pages(first, base_url=self.base_url, fetch_page=fetch_page, what=what):
            found += page.matches
        return found

    async def count(self, resource_type: str, params: Sequence[tuple[str, str]]) -> int:
        """``total`` of ``[type]?params&_summary=count``."""
        bundle = await self.get_json(resource_type, [*params, ("_summary", "count")],
                                     what=f"{resource_type} count")
        total = bundle.get("total")
        if not isinstance(total, int):
            raise FhirProtocolError(f"{resource_type} count: the server gave no total")
        return total

    async def transaction(self, bundle: Mapping[str, Any], *, retry: bool) -> dict[str, Any]:
        """POST a transaction or batch Bundle to the base URL and return the response Bundle.

        ``retry`` may be true only when replaying the Bundle cannot create duplicates (every
        write is a conditional create, or the Bundle holds only reads).
        """
        kind = str(bundle.get("type"))
        response = await self.send("POST", "", body=bundle, retry=retry)
        # A refused transaction wrote nothing (it is atomic); a refused batch is refused whole.
        check_response(response, what=kind, write=(
            "a FHIR transaction is all or nothing" if kind == "transaction" else
            "the server refused the whole batch" if _writes(bundle) else ""))
        return json_body(response, what=kind)

    async def update(
        self, url: str, resource: Mapping[str, Any], params: Sequence[tuple[str, str]] = ()
    ) -> dict[str, Any]:
        """PUT (an update or a conditional update; idempotent, so retried)."""
        response = await self.send("PUT", url, params=params or None, body=resource, retry=True)
        what = f"PUT {url}"
        check_response(response, what=what, write="the server refused the update")
        return json_body(response, what=what)

    # -- The screening read ----------------------------------------------------------------

    async def read_patient_data(
        self,
        patient_id: str,
        *,
        as_of: datetime,
        bp_window_days: int,
        concurrent: bool = True,
    ) -> RawPatientData:
        """Everything the rules need about one patient, read in full or not at all.

        The searches run concurrently (``concurrent=False`` runs them one after another, for
        measurements). Any failure raises a FhirError; an unknown patient raises FhirNotFound
        with ``patient`` set.
        """
        resource_path("Patient", patient_id)  # a bad id fails here, before anything is sent
        started = time.perf_counter()
        sent_before = self.requests_sent
        caps = await self.capabilities()
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        since = as_of - timedelta(days=bp_window_days)
        plan = record.plan_searches(caps, patient_id, since)
        jobs: dict[str, Coroutine[Any, Any, Any]] = {"Patient": self._read_patient(patient_id)}
        for name, (rtype, params) in plan.items():
            jobs[name] = self._tolerant_search(rtype, params)
        results = await _run_all(jobs, concurrent=concurrent)
        data = record.assemble(patient_id, results)  # attribute reads only: cheap, on the loop
        data.not_offered = record.unavailable_types(caps)
        missing = record.unresolved_medications(data, results, self.base_url)
        if missing:
            found = await self._read_medications(caps, missing)
            record.add_medications(data, missing, found)
        log.info("read patient %s: %d resources, %d medications, %d problems, %d requests, "
                 "%.0f ms", pseudonym(patient_id), len(data.resources), len(data.medications),
                 len(data.problems), self.requests_sent - sent_before,
                 (time.perf_counter() - started) * 1000)
        return data

    async def _tolerant_search(self, rtype: str, params: list[tuple[str, str]]
                               ) -> SearchResult:
        """A planned search; refused for a parameter (quirk "refused parameter"), tried again
        with one parameter relaxed at a time, never without the patient."""
        while True:
            try:
                return await self.search(rtype, params)
            except FhirRejected as exc:
                step = record.relaxed(params)
                if exc.status not in record.REFUSED_SEARCH_STATUSES or step is None:
                    raise
                log.info("search %s refused (HTTP %s): tried again without %s", rtype,
                         exc.status, step[0])
                params = step[1]

    async def _read_patient(self, patient_id: str
                            ) -> tuple[Projected | None, ReadProblem | None]:
        try:
            return await self.read_record("Patient", patient_id)
        except FhirNotFound as exc:
            raise FhirNotFound(f"patient not found: Patient/{patient_id}",
                               status=exc.status, patient=patient_id) from exc

    async def _read_medications(self, caps: Capabilities, ids: Sequence[str]) -> SearchResult:
        """Referenced Medications not brought by ``_include``: ``_id`` searches, else a batch."""
        found = SearchResult()
        if caps.supports_search("Medication", "_id") or not caps.search_params:
            for start in range(0, len(ids), MEDICATION_BATCH):
                chunk = ids[start:start + MEDICATION_BATCH]
                result = await self.search("Medication", [("_id", ",".join(chunk))])
                found.matches += result.matches
                found.problems += result.problems
            return found
        batch = {"resourceType": "Bundle", "type": "batch",
                 "entry": [{"request": {"method": "GET", "url": resource_path("Medication", mid)}}
                           for mid in ids]}
        answer = await self.transaction(batch, retry=True)
        for entry in answer.get("entry") or []:
            status = str((entry.get("response") or {}).get("status", ""))
            if status.startswith("2") and isinstance(entry.get("resource"), dict):
                resource, problem = decode_resource(entry["resource"])
                if resource is not None:
                    found.matches.append(resource)
                if problem is not None:
                    found.problems.append(problem)
            elif not status.startswith("404") and not status.startswith("410"):
                raise FhirProtocolError(f"batch read of Medication failed: {status}")
        return found


async def _run_all(
    jobs: dict[str, Coroutine[Any, Any, Any]], *, concurrent: bool
) -> dict[str, Any]:
    if not concurrent:
        return {name: await job for name, job in jobs.items()}
    # Every read runs to its end, even after one fails: a TaskGroup would cancel the rest, and
    # which error was reported would depend on which answer came first. The patient's absence
    # explains every other failure, so it is reported whenever it is among them.
    results = await asyncio.gather(*jobs.values(), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise reported_error(BaseExceptionGroup("FHIR reads failed", failures),
                             prefer=_patient_missing) from None
    return dict(zip(jobs, results, strict=True))


def _patient_missing(exc: BaseException) -> bool:
    return isinstance(exc, FhirNotFound) and exc.patient is not None


def _writes(bundle: Mapping[str, Any]) -> bool:
    """Whether a batch holds anything but reads (its refusal then says nothing was written)."""
    return any(str((entry.get("request") or {}).get("method", "GET")).upper() != "GET"
               for entry in bundle.get("entry") or [] if isinstance(entry, dict))
