"""Async FHIR R4 client: one ``httpx.AsyncClient``, bounded retries, FHIR error mapping.

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
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import httpx

from service.config import Settings, get_settings
from service.errors import (
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    reported_error,
)
from service.fhir import record
from service.fhir.capabilities import Capabilities, cached_capabilities
from service.fhir.http import RetryPolicy, check_response, json_body, send_with_retry
from service.fhir.paging import SearchResult, collect_pages
from service.fhir.references import MEDICATION_BATCH
from service.logs import pseudonym
from service.screening.model import RawPatientData

__all__ = ["FhirClient"]

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"


class FhirClient:
    """One FHIR server session. Not safe to share across event loops; cheap to create."""

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
        on_request: Sequence[Callable[[httpx.Request], Awaitable[None]]] = (),
        request_id: str | None = None,
    ) -> None:
        """``capabilities`` stands in for the server's CapabilityStatement (the per-server cache is
        then neither read nor filled): a seam for tests of the search fallbacks, and for servers
        whose statement is known to be wrong. ``on_request`` hooks see every request as it is
        sent (httpx request event hooks), retries included. ``request_id`` is sent as
        ``X-Request-ID`` on every request (the id of the request we are serving, so the EHR's logs
        and ours meet); without it each request gets a fresh id.
        """
        settings = settings or get_settings()
        self.base_url = base_url.rstrip("/") + "/"
        self.page_size = page_size or settings.fhir_page_size
        self.retry = retry or RetryPolicy(max_retries=settings.fhir_max_retries)
        self._capabilities = capabilities
        self.requests_sent = 0
        """HTTP requests put on the wire, retries included (for measurements and tests)."""
        headers = {"Accept": FHIR_JSON}
        if request_id:
            headers["X-Request-ID"] = request_id
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(settings.fhir_timeout_seconds),
            headers=headers,
            follow_redirects=False,
            event_hooks={"request": [self._count_request, *on_request]},
        )

    async def _count_request(self, request: httpx.Request) -> None:
        self.requests_sent += 1

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- HTTP ---------------------------------------------------------------------------------

    @property
    def timeout(self) -> httpx.Timeout:
        return self._http.timeout

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
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("Content-Type", FHIR_JSON)
        query = None
        if params:
            query = httpx.QueryParams(params if isinstance(params, Mapping) else list(params))
        request = self._http.build_request(method, url, params=query, json=body,
                                           headers=sent or None)
        return await send_with_retry(self._http, request, policy=self.retry, retry=retry)

    def stream(self, url: str, *, headers: Mapping[str, str] | None = None
               ) -> AbstractAsyncContextManager[httpx.Response]:
        """``GET url`` on this session with the body left unread (``aiter_lines`` it)."""
        return self._http.stream("GET", url, headers=headers)

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
        return await self.get_json(f"{resource_type}/{resource_id}",
                                   what=f"{resource_type}/{resource_id}")

    async def search(
        self, resource_type: str, params: Sequence[tuple[str, str]]
    ) -> SearchResult:
        """Every page of ``GET [base]/[type]?params`` (``_count`` set to the page size)."""
        what = resource_type
        query = [*params, ("_count", str(self.page_size))]
        first = await self.get_json(resource_type, query, what=what)

        async def fetch_page(url: str) -> dict[str, Any]:
            return await self.get_json(url, what=what)

        return await collect_pages(first, base_url=self.base_url, fetch_page=fetch_page,
                                   what=what)

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
        check_response(response, what=kind)
        return json_body(response, what=kind)

    async def update(
        self, url: str, resource: Mapping[str, Any], params: Sequence[tuple[str, str]] = ()
    ) -> dict[str, Any]:
        """PUT (an update or a conditional update; idempotent, so retried)."""
        response = await self.send("PUT", url, params=params or None, body=resource, retry=True)
        what = f"PUT {url}"
        check_response(response, what=what)
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
        started = time.perf_counter()
        sent_before = self.requests_sent
        caps = await self.capabilities()
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        since = as_of - timedelta(days=bp_window_days)
        plan = record.plan_searches(caps, patient_id, since)
        jobs: dict[str, Coroutine[Any, Any, Any]] = {"Patient": self._read_patient(patient_id)}
        for name, (rtype, params) in plan.items():
            jobs[name] = self.search(rtype, params)
        results = await _run_all(jobs, concurrent=concurrent)
        # Validating hundreds of resources is CPU work: keep the event loop free meanwhile.
        data = await asyncio.to_thread(record.assemble, patient_id, results)
        missing = record.unresolved_medications(data, results, self.base_url)
        if missing:
            found = await self._read_medications(caps, missing)
            record.add_medications(data, missing, found)
        log.info("read patient %s: %d resources, %d medications, %d problems, %d requests, "
                 "%.0f ms", pseudonym(patient_id), len(data.resources), len(data.medications),
                 len(data.problems), self.requests_sent - sent_before,
                 (time.perf_counter() - started) * 1000)
        return data

    async def _read_patient(self, patient_id: str) -> dict[str, Any]:
        try:
            return await self.read("Patient", patient_id)
        except FhirNotFound as exc:
            raise FhirNotFound(f"patient not found: Patient/{patient_id}",
                               status=exc.status, patient=patient_id) from exc

    async def _read_medications(
        self, caps: Capabilities, ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Referenced Medications not brought by ``_include``: ``_id`` searches, else a batch."""
        found: list[dict[str, Any]] = []
        if caps.supports_search("Medication", "_id") or not caps.search_params:
            for start in range(0, len(ids), MEDICATION_BATCH):
                chunk = ids[start:start + MEDICATION_BATCH]
                result = await self.search("Medication", [("_id", ",".join(chunk))])
                found.extend(result.matches)
            return found
        batch = {"resourceType": "Bundle", "type": "batch",
                 "entry": [{"request": {"method": "GET", "url": f"Medication/{mid}"}}
                           for mid in ids]}
        answer = await self.transaction(batch, retry=True)
        for entry in answer.get("entry") or []:
            status = str((entry.get("response") or {}).get("status", ""))
            if status.startswith("2") and isinstance(entry.get("resource"), dict):
                found.append(entry["resource"])
            elif not status.startswith("404") and not status.startswith("410"):
                raise FhirProtocolError(f"batch read of Medication failed: {status}")
        return found


async def _run_all(
    jobs: dict[str, Coroutine[Any, Any, Any]], *, concurrent: bool
) -> dict[str, Any]:
    if not concurrent:
        return {name: await job for name, job in jobs.items()}
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {name: group.create_task(job) for name, job in jobs.items()}
    except BaseExceptionGroup as failures:
        # The patient's absence explains every other failure, so it is reported first.
        raise reported_error(failures, prefer=_patient_missing) from None
    return {name: task.result() for name, task in tasks.items()}


def _patient_missing(exc: BaseException) -> bool:
    return isinstance(exc, FhirNotFound) and exc.patient is not None
