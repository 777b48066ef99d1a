"""HTTP plumbing under the FHIR client: bounded retries and FHIR error mapping.

httpx has timeouts and connection pooling but no retry policy for *responses*, so this module adds a
small one: exponential backoff with jitter for 429/502/503/504 and for transport errors, honouring
``Retry-After`` (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date), capped so that one hostile
header cannot stall a request.

Errors follow the FHIR RESTful API (https://hl7.org/fhir/R4/http.html#summary): a failed interaction
answers with an HTTP status and usually an OperationOutcome, whose ``issue.diagnostics`` /
``issue.details.text`` are what we quote. Nothing here logs bodies or paths (a path can hold a
patient id): only the operation (``read Patient``, :func:`service.metrics.fhir_operation`),
status and duration; the request id is on every line (:mod:`service.logs`). Every attempt is
counted and timed in :mod:`service.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import msgspec

from service.errors import (
    FhirAuthError,
    FhirError,
    FhirForbidden,
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    FhirTimeout,
    FhirUnavailable,
)
from service.metrics import FHIR_DURATION, FHIR_REQUESTS, fhir_operation

__all__ = [
    "MAX_ISSUE_CHARS",
    "MAX_QUOTED_ISSUES",
    "RETRY_STATUSES",
    "RetryPolicy",
    "SendHook",
    "check_response",
    "forbidden",
    "json_body",
    "outcome_text",
    "retry_after_seconds",
    "send_with_retry",
]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that say "try again later"; a 500 is a bug on the server and is not retried."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    """Extra attempts after the first one."""
    base_delay: float = 0.5
    max_delay: float = 8.0
    retry_after_cap: float = 30.0
    """The longest ``Retry-After`` we honour; longer asks are cut to this."""
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)
    """How a wait between attempts is spent (tests record the waits instead of sleeping)."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        ceiling = min(self.max_delay, self.base_delay * (2.0**attempt))
        # "Equal jitter": half fixed, half random, so concurrent clients spread out.
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After``: delay-seconds or an HTTP-date. ``None`` when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _path(request: httpx.Request) -> str:
    # The path carries resource types and ids only; the query (search values) is left out.
    return request.url.path


def _observe(operation: str, outcome: str, started: float) -> None:
    FHIR_REQUESTS.labels(operation, outcome).inc()
    FHIR_DURATION.labels(operation).observe(time.perf_counter() - started)


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "client-error" if status < 500 else "server-error"


SendHook = Callable[[httpx.Request], Awaitable[None]]
"""Sees a request just before each attempt is sent (retries included)."""


async def send_with_retry(
    client: httpx.AsyncClient,
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    retry: bool,
    auth: httpx.Auth | None = None,
    before_send: SendHook | None = None,
) -> httpx.Response:
    """Send ``request``; retry transport errors and RETRY_STATUSES when ``retry`` is true.

    Only idempotent requests may be retried: GETs, PUTs, and transactions whose every entry is a
    conditional create (see service.fhir.transaction). Returns the last response, whatever its
    status, once retries are spent on a retryable status; raises FhirTimeout / FhirUnavailable when
    the last attempt failed in transport. ``auth`` is this request's (the client may be a pool
    shared by several sessions).
    """
    request_id = request.headers.setdefault("X-Request-ID", uuid.uuid4().hex)
    operation = fhir_operation(request.method, client.base_url.path, request.url.path)
    attempts = 1 + (policy.max_retries if retry else 0)
    for attempt in range(attempts):
        started = time.perf_counter()
        last_try = attempt == attempts - 1
        try:
            if before_send is not None:
                await before_send(request)
            response = await client.send(request, auth=auth or httpx.USE_CLIENT_DEFAULT)
        except httpx.TimeoutException as exc:
            _observe(operation, "timeout", started)
            log.warning("FHIR %s timed out (attempt %d)", operation, attempt + 1)
            if last_try:
                raise FhirTimeout(f"FHIR server did not answer in time: {request.method} "
                                  f"{_path(request)} (request {request_id})") from exc
            await policy.sleep(policy.delay(attempt, None))
            continue
        except httpx.TransportError as exc:
            _observe(operation, "transport", started)
            log.warning("FHIR %s failed in transport: %s (attempt %d)", operation,
                        type(exc).__name__, attempt + 1)
            if last_try:
                raise FhirUnavailable(f"FHIR server unreachable: {request.method} "
                                      f"{_path(request)}: {type(exc).__name__} "
                                      f"(request {request_id})") from exc
            await policy.sleep(policy.delay(attempt, None))
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        _observe(operation, _outcome(response.status_code), started)
        log.debug("FHIR %s -> %d in %.0f ms", operation, response.status_code, elapsed_ms)
        if response.status_code in RETRY_STATUSES and not last_try:
            wait = policy.delay(attempt, retry_after_seconds(response.headers.get("Retry-After")))
            await response.aclose()
            log.warning("FHIR %s -> %d, retrying in %.2f s", operation, response.status_code,
                        wait)
            await policy.sleep(wait)
            continue
        return response
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises


MAX_QUOTED_ISSUES = 3
"""Issues quoted in an error message; a rejected transaction can list hundreds."""
MAX_ISSUE_CHARS = 200
"""Characters quoted per issue, location included."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def outcome_text(response: httpx.Response) -> str:
    """The OperationOutcome's first few issue texts, joined; a short fallback when there is none.

    Only ``diagnostics`` (else ``details.text``) and ``expression`` (else ``location``) are quoted,
    at most MAX_QUOTED_ISSUES of them and each cut to MAX_ISSUE_CHARS, then "(and N more)": the
    message goes to logs and to the clinician's page, and must stay short there.
    """
    try:
        data = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, RecursionError):
        return f"HTTP {response.status_code} without an OperationOutcome"
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return f"HTTP {response.status_code} without an OperationOutcome"
    issues = [i for i in data.get("issue") or [] if isinstance(i, dict)]
    # Validation answers list warnings and best-practice notes too; the errors are the reason.
    errors = [i for i in issues if i.get("severity") in ("fatal", "error")]
    texts: list[str] = []
    for issue in errors or issues:
        details = issue.get("details")
        text = issue.get("diagnostics") or (details.get("text") if isinstance(details, dict)
                                            else None)
        if text:
            places = issue.get("expression") or issue.get("location") or []
            where = ", ".join(str(p) for p in places) if isinstance(places, list) else ""
            texts.append(_clip(f"{text} ({where})" if where else str(text), MAX_ISSUE_CHARS))
    if not texts:
        return f"HTTP {response.status_code} with an empty OperationOutcome"
    quoted = "; ".join(texts[:MAX_QUOTED_ISSUES])
    more = len(texts) - MAX_QUOTED_ISSUES
    return f"{quoted} (and {more} more)" if more > 0 else quoted


_SCOPE_TOKEN = re.compile(r"\b(?:patient|user|system)/(?:[A-Z][A-Za-z]*|\*)\.[a-z*]+\b")
"""A SMART scope in an OperationOutcome's text: the one thing taken from it, to name to the user."""


def forbidden(response: httpx.Response, *, what: str, write: str = "") -> FhirForbidden:
    """The error for a 403: names the scope the server's answer names, if it names one, and what
    to do. ``write``: why nothing was written ("" for a read), e.g. "a FHIR transaction is all
    or nothing"."""
    text = outcome_text(response)
    found = _SCOPE_TOKEN.search(text)
    scope = found.group(0) if found else None
    message = f"The EHR refused {what} (403): {text}."
    if write:
        message += f" Nothing was written: {write}."
    if scope:
        message += (f" The app lacks the scope {scope}: ask the EHR administrator to grant "
                    f"{scope} to this app, then launch it again.")
    else:
        message += (" The app may lack a scope it needs: ask the EHR administrator to grant this "
                    "app every scope its documentation lists, then launch it again.")
    return FhirForbidden(message, status=403, scope=scope)


def check_response(response: httpx.Response, *, what: str, write: str = "") -> None:
    """Raise the service error that a non-2xx answer means; ``what`` names the target for messages.

    ``what`` must carry no PHI: a resource type and id, or an interaction name. ``write`` says
    why nothing was written when the request was a write (a 403 says so).
    """
    status = response.status_code
    if status < 300:
        return
    if status == 403:
        raise forbidden(response, what=what, write=write)
    error: type[FhirError]
    if status == 401:
        error, message = FhirAuthError, f"FHIR server refused {what} ({status}): "
    elif status in (404, 410):
        error, message = FhirNotFound, f"not found: {what} ({status}): "
    elif status in RETRY_STATUSES or status >= 500:
        error, message = FhirUnavailable, f"FHIR server failed {what} ({status}): "
    else:
        error, message = FhirRejected, f"FHIR server rejected {what} ({status}): "
    raise error(message + outcome_text(response), status=status)


def json_body(response: httpx.Response, *, what: str) -> dict[str, Any]:
    """The answer as a JSON object, or FhirProtocolError (decoded by msgspec, the project's one
    fast JSON library: about twice as fast as the json module on FHIR answers)."""
    try:
        data = msgspec.json.decode(response.content)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise FhirProtocolError(f"malformed JSON from the FHIR server for {what}",
                                status=response.status_code) from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise FhirProtocolError(f"the FHIR server's answer for {what} is not a FHIR resource",
                                status=response.status_code)
    return data
