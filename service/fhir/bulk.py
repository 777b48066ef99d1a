"""FHIR Bulk Data export: kick off, poll, and stream the NDJSON files (I/O only).

Spec: https://hl7.org/fhir/uv/bulkdata/STU2/export.html. The flow:

1. **Kick-off** ``GET [base]/$export`` or ``GET [base]/Group/[id]/$export`` with
   ``Prefer: respond-async`` answers 202 and a ``Content-Location`` status URL.
2. **Status** requests on that URL answer 202 (``X-Progress``, ``Retry-After``) while the export
   runs, then 200 with the manifest (``output[]``: ``type``, ``url``, ``count``).
3. **Download** each ``output[].url`` as ``application/fhir+ndjson``, one resource per line;
   :meth:`BulkExport.lines` streams them (``httpx`` ``stream``, split into lines as bytes) so a
   file is never held in memory whole.
4. **Delete** the status URL when done, so the server may drop the files.

A server that does not offer ``$export`` (no ``export`` operation in its CapabilityStatement, or
404/405/501 on kick-off) makes :func:`start_export` return ``None``; the caller then pages
``Patient`` instead (service.population).

Server quirks met here (the poll wait, Group export types, the statement's size, servers without
``$export``) are listed in :mod:`service.fhir.quirks`. Every request goes through the client's
public :meth:`~service.fhir.client.FhirClient.send` / ``stream``: the same session, auth, limits
and retries as the searches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from service.errors import FhirError, FhirProtocolError, FhirTimeout, FhirUnavailable
from service.fhir import quirks
from service.fhir.client import FhirClient
from service.fhir.http import check_response, retry_after_seconds
from service.fhir.references import SCREENED_TYPES, resource_path
from service.urls import same_origin

__all__ = [
    "EXPORT_TYPES",
    "GROUP_EXPORT_TYPES",
    "BulkExport",
    "ExportFile",
    "Manifest",
    "export_operation_listed",
    "start_export",
]

log = logging.getLogger(__name__)

EXPORT_TYPES = ("Patient", *SCREENED_TYPES, "Medication")
"""What screening reads, and the Medications that medication records reference."""
GROUP_EXPORT_TYPES = tuple(t for t in EXPORT_TYPES if t not in quirks.GROUP_EXPORT_EXCLUDES)
"""What a Group export may ask for: the patient-compartment types."""
NDJSON = "application/fhir+ndjson"


@dataclass(frozen=True, slots=True)
class ExportFile:
    type: str
    url: str
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    transaction_time: str | None
    requires_access_token: bool
    output: tuple[ExportFile, ...]
    errors: tuple[ExportFile, ...]
    """OperationOutcome NDJSON files the server wrote for resources it could not export."""


def export_operation_listed(statement: Mapping[str, Any], group: bool) -> bool:
    """True when the CapabilityStatement lists ``export`` (system level, or on Group)."""
    for rest in statement.get("rest") or []:
        if not isinstance(rest, dict):
            continue
        if not group and _names(rest.get("operation")) & {"export"}:
            return True
        for resource in rest.get("resource") or []:
            if (isinstance(resource, dict) and resource.get("type") == "Group" and group
                    and "export" in _names(resource.get("operation"))):
                return True
    return False


def _names(operations: Any) -> set[str]:
    return {str(op.get("name", "")).removeprefix("$") for op in operations or []
            if isinstance(op, dict)}


async def start_export(
    client: FhirClient, *, group: str | None = None, types: Sequence[str] | None = None,
    since: str | None = None, max_poll_interval: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> BulkExport | None:
    """Kick off a system (or Group) export; ``None`` when the server does not offer one."""
    try:
        statement = await client.get_json("metadata", quirks.SUMMARY_STATEMENT, what="metadata")
    except quirks.STATEMENT_FAILURES:
        statement = {}  # no usable statement: try the kick-off and see
    if statement and not export_operation_listed(statement, group is not None):
        log.info("the CapabilityStatement lists no export operation")
        return None
    kinds = types or (GROUP_EXPORT_TYPES if group else EXPORT_TYPES)
    params = {"_type": ",".join(kinds)}
    if since:
        params["_since"] = since
    url = f"{resource_path('Group', group)}/$export" if group else "$export"
    response = await client.send(
        "GET", url, params=params, retry=True,
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"})
    await response.aread()
    if response.status_code in quirks.NO_EXPORT_STATUSES:
        log.info("$export kick-off answered %d", response.status_code)
        return None
    check_response(response, what=url)
    location = response.headers.get("Content-Location")
    if response.status_code != 202 or not location:
        raise FhirProtocolError(f"{url}: expected 202 with Content-Location, got "
                                f"{response.status_code}")
    if not same_origin(str(response.url.join(location)), client.base_url):
        raise FhirProtocolError(f"{url}: the status URL leaves the server")
    return BulkExport(client, str(response.url.join(location)), group=group,
                      max_poll_interval=max_poll_interval, sleep=sleep, clock=clock)


class BulkExport:
    """One running export job: :meth:`wait` for its manifest, then :meth:`lines` of each file."""

    def __init__(self, client: FhirClient, status_url: str, *, group: str | None = None,
                 max_poll_interval: float = 5.0, deadline_seconds: float = 6 * 3600,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.status_url = status_url
        self.group = group
        self.max_poll_interval = max_poll_interval
        self.deadline_seconds = deadline_seconds
        self.progress: str | None = None
        """The last ``X-Progress`` text (free text, e.g. "Build in progress - 50%")."""
        self.polls = 0
        self._sleep = sleep
        self._clock = clock

    async def wait(self, on_progress: Callable[[str], None] | None = None) -> Manifest:
        """Poll until the manifest arrives; FhirTimeout after ``deadline_seconds``.

        Waits ``Retry-After`` between polls, capped at ``max_poll_interval``; without one, backs
        off from 0.5 s. 429/503 answers to a poll are retried by the client's policy.
        """
        started = self._clock()
        backoff = 0.5
        while True:
            response = await self.client.send("GET", self.status_url, retry=True,
                                              headers={"Accept": "application/json"})
            self.polls += 1
            if response.status_code != 202:
                check_response(response, what="$export status")
                return _manifest(_json_object(response))
            await response.aclose()
            progress = response.headers.get("X-Progress")
            if progress and progress != self.progress:
                self.progress = progress
                if on_progress is not None:
                    on_progress(progress)
            if self._clock() - started > self.deadline_seconds:
                raise FhirTimeout(f"$export did not finish in {self.deadline_seconds:.0f} s")
            asked = retry_after_seconds(response.headers.get("Retry-After"))
            await self._sleep(quirks.capped_poll_wait(asked, backoff, self.max_poll_interval))
            backoff = min(backoff * 2, self.max_poll_interval)

    async def lines(self, file: ExportFile, manifest: Manifest) -> AsyncIterator[bytes]:
        """The non-blank lines of one NDJSON file (UTF-8, as sent: they are decoded once, later),
        streamed; FhirError when the download fails.

        The access token goes only to the FHIR server's own origin: a file elsewhere is fetched
        without it, or refused when the manifest says it needs one.
        """
        own = same_origin(file.url, self.client.base_url)
        if not own and manifest.requires_access_token:
            raise FhirProtocolError("an export file that needs our token is on another server")
        plain = None if own else httpx.AsyncClient(timeout=self.client.timeout)
        headers = {"Accept": NDJSON}
        try:
            async with (self.client.stream(file.url, headers=headers) if plain is None
                        else plain.stream("GET", file.url, headers=headers)) as response:
                if response.status_code >= 300:
                    await response.aread()
                    check_response(response, what=f"{file.type} export file")
                rest = b""
                async for chunk in response.aiter_bytes():
                    *complete, rest = (rest + chunk).split(b"\n")
                    for line in complete:
                        if line.strip():
                            yield line.removesuffix(b"\r")
                if rest.strip():
                    yield rest.removesuffix(b"\r")
        except httpx.TimeoutException as exc:
            raise FhirTimeout(f"download of a {file.type} export file timed out") from exc
        except httpx.TransportError as exc:
            raise FhirUnavailable(f"download of a {file.type} export file failed: "
                                  f"{type(exc).__name__}") from exc
        finally:
            if plain is not None:
                await plain.aclose()

    async def delete(self) -> None:
        """Tell the server the files may go (best effort: a failure is only logged)."""
        try:
            response = await self.client.send("DELETE", self.status_url, retry=False)
            await response.aclose()
        except FhirError as exc:
            log.info("could not delete the export job: %s", type(exc).__name__)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    """The manifest is plain JSON, not a FHIR resource: no ``resourceType`` check."""
    try:
        data = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise FhirProtocolError("malformed JSON in the $export manifest") from exc
    if not isinstance(data, dict):
        raise FhirProtocolError("the $export manifest is not a JSON object")
    return data


def _files(items: Any) -> tuple[ExportFile, ...]:
    files: list[ExportFile] = []
    for item in items or []:
        if isinstance(item, dict) and isinstance(item.get("url"), str):
            count = item.get("count")
            files.append(ExportFile(str(item.get("type", "")), item["url"],
                                    count if isinstance(count, int) else None))
    return tuple(files)


def _manifest(data: Mapping[str, Any]) -> Manifest:
    if not isinstance(data.get("output"), list):
        raise FhirProtocolError("the $export manifest has no output list")
    stamp = data.get("transactionTime")
    return Manifest(stamp if isinstance(stamp, str) else None,
                    bool(data.get("requiresAccessToken", True)),
                    _files(data.get("output")), _files(data.get("error")))
