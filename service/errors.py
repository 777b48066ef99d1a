"""Every error the service raises on purpose, and what each one answers with.

    ServiceError                      503 not-configured   (the base; exit code 1)
    ├── InputError                    422 input            bad data handed to us (exit code 2)
    │   └── BundleError               422 input            not JSON, not a Bundle, unparseable
    ├── MapError                      503 not-configured   a fhir_maps file is malformed (start-up)
    ├── ConfigError                   503 not-configured   a KETAMINE_* setting is unusable, or
    │                                                      production refuses it (exit code 2)
    ├── ServiceBusy                   503 busy             too much heavy work at once (Retry-After)
    ├── StoreUnavailable              503 store-unavailable  the session store (Redis) does not
    │                                                      answer (Retry-After; page)
    ├── PrefetchIncomplete            412 http             CDS prefetch lacks records, no server
    ├── FhirError                     502 fhir-protocol    the FHIR server failed us (``status``:
    │   │                                                  the server's own HTTP status)
    │   ├── FhirTimeout               504 fhir-timeout     no answer in time, retries spent
    │   ├── FhirUnavailable           503 fhir-unavailable 5xx / 429 / connection reset, retried
    │   ├── FhirNotFound              404 fhir-not-found   ``patient`` set when it is the patient
    │   ├── FhirAuthError             502 fhir-auth        401 / 403, with the server's text
    │   │   └── FhirForbidden         502 fhir-forbidden   403: the granted scopes do not cover
    │   │                                                  it (``scope``: the one named, if any)
    │   ├── FhirRejected              422 / 502 fhir-rejected  422 when the server rejected content
    │   │                                                  the caller sent (its 400 / 422)
    │   └── FhirProtocolError         502 fhir-protocol    not the FHIR we asked for
    │       └── PagingRefused         502 fhir-protocol    the server refused its own next link
    └── AuthError                     503 not-configured   not configured for this FHIR server
        ├── LaunchError               400 launch-failed    bad iss, state, PKCE, callback (page)
        │   └── TokenEndpointUnavailable  502 launch-failed  the EHR's token endpoint failed
        └── TokenError                502 upstream-token   no access token from the FHIR server
            ├── BearerError           401 invalid-token    a REST or CDS caller's bearer token;
            │                                              400 invalid-request, 403
            │                                              insufficient-scope (RFC 6750 codes,
            │                                              with WWW-Authenticate)
            └── SessionExpired        401 session          no usable clinician session (page)

Each class carries what its answer needs: ``http_status``, ``title``, ``problem_type`` (the
RFC 9457 ``type`` URN's last part), ``page`` (a browser gets an HTML page rather than
problem+json), ``exit_code`` for the command line, and the response headers it needs
(``headers()``: ``WWW-Authenticate``, ``Retry-After``). Context travels as attributes, never in
the message to be parsed back out. Messages never carry PHI: resource ids and request ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

__all__ = [
    "PROBLEM_TYPE_BASE",
    "RETRY_AFTER_SECONDS",
    "AuthError",
    "BearerCode",
    "BearerError",
    "BundleError",
    "ConfigError",
    "FhirAuthError",
    "FhirError",
    "FhirForbidden",
    "FhirNotFound",
    "FhirProtocolError",
    "FhirRejected",
    "FhirTimeout",
    "FhirUnavailable",
    "InputError",
    "LaunchError",
    "MapError",
    "PagingRefused",
    "PrefetchIncomplete",
    "ServiceBusy",
    "ServiceError",
    "SessionExpired",
    "StoreUnavailable",
    "TokenEndpointUnavailable",
    "TokenError",
    "problem_body",
    "reported_error",
]

PROBLEM_TYPE_BASE = "urn:ketamine-screen:problem:"
"""Problem ``type`` values are this prefix and the class's ``problem_type``."""


def problem_body(status: int, title: str, detail: str, problem_type: str,
                 request_id: str | None) -> dict[str, Any]:
    """An RFC 9457 problem details object (``request_id`` is an extension member, section 3.2)."""
    body: dict[str, Any] = {"type": PROBLEM_TYPE_BASE + problem_type, "title": title,
                            "status": status, "detail": detail}
    if request_id is not None:
        body["request_id"] = request_id
    return body


class ServiceError(Exception):
    """Base of every deliberate error; ``str(err)`` is safe to show and to log."""

    http_status: int = 503
    title: str = "Service not configured"
    problem_type: str = "not-configured"
    page: bool = False
    """A browser (``Accept: text/html``) gets the plain error page instead of problem+json."""
    exit_code: int = 1

    def headers(self) -> dict[str, str]:
        """Response headers the answer needs (``WWW-Authenticate`` for a bearer error)."""
        return {}

    def problem(self, request_id: str | None) -> dict[str, Any]:
        return problem_body(self.http_status, self.title, str(self), self.problem_type,
                            request_id)


class InputError(ServiceError):
    http_status = 422
    title = "Unusable input"
    problem_type = "input"
    exit_code = 2


class BundleError(InputError):
    pass


class MapError(ServiceError):
    pass


class ConfigError(ServiceError):
    """A ``KETAMINE_*`` variable that cannot be used; the message names it, never its value."""

    exit_code = 2


RETRY_AFTER_SECONDS = 5
"""What a 503 for a passing condition (busy, store down) asks the caller to wait (RFC 9110
section 10.2.3)."""


class _RetryLater:
    """A passing condition: the answer says when to try again."""

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}


class ServiceBusy(_RetryLater, ServiceError):
    """More heavy requests at once than this process takes (``KETAMINE_MAX_HEAVY_REQUESTS``)."""

    title = "Busy"
    problem_type = "busy"


class StoreUnavailable(_RetryLater, ServiceError):
    """The session store (Redis) did not answer: nothing can be read or remembered."""

    title = "Session store unavailable"
    problem_type = "store-unavailable"
    page = True


class PrefetchIncomplete(ServiceError):
    """Prefetch lacks records and the FHIR server cannot supply them (HTTP 412 in CDS Hooks,
    https://cds-hooks.hl7.org/2.0/#prefetch-template)."""

    http_status = 412
    title = "Precondition Failed"
    problem_type = "http"


class FhirError(ServiceError):
    http_status = 502
    title = "The FHIR server's answer is unusable"
    problem_type = "fhir-protocol"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The FHIR server's HTTP status, when it answered at all."""


class FhirTimeout(FhirError):
    http_status = 504
    title = "The FHIR server did not answer in time"
    problem_type = "fhir-timeout"


class FhirUnavailable(FhirError):
    http_status = 503
    title = "The FHIR server is unavailable"
    problem_type = "fhir-unavailable"


class FhirNotFound(FhirError):
    http_status = 404
    title = "Not found on the FHIR server"
    problem_type = "fhir-not-found"

    def __init__(self, message: str, *, status: int | None = None,
                 patient: str | None = None) -> None:
        super().__init__(message, status=status)
        self.patient = patient
        """The id of the patient being read, when it is the patient who does not exist."""


class FhirAuthError(FhirError):
    http_status = 502
    title = "The FHIR server refused our credentials"
    problem_type = "fhir-auth"


class FhirForbidden(FhirAuthError):
    """A 403: the EHR refused an interaction, most often because the scopes the clinic granted
    do not cover it (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

    Still a 502: the clinician cannot fix it, the EHR's administrator can, by granting ``scope``.
    """

    title = "The EHR refused: a scope is not granted"
    problem_type = "fhir-forbidden"

    def __init__(self, message: str, *, status: int | None = 403,
                 scope: str | None = None) -> None:
        super().__init__(message, status=status)
        self.scope = scope
        """The scope the server's OperationOutcome names as missing, when it names one."""


class FhirRejected(FhirError):
    problem_type = "fhir-rejected"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status)
        # The server refused content the caller sent (a 400 or 422): the caller's to fix.
        caller_data = status in (400, 422)
        self.http_status = 422 if caller_data else 502
        self.title = ("The FHIR server rejected the data" if caller_data
                      else "The FHIR server rejected the request")


class FhirProtocolError(FhirError):
    pass


class PagingRefused(FhirProtocolError):
    """A search's ``next`` link answered 4xx (an expired paging cursor, a server that pages by
    links it will not serve): the pages read so far are never screened alone."""


class AuthError(ServiceError):
    title = "Not configured for this FHIR server"


class LaunchError(AuthError):
    http_status = 400
    title = "Launch failed"
    problem_type = "launch-failed"
    page = True


class TokenEndpointUnavailable(LaunchError):
    """The EHR's token endpoint did not answer properly (502, not the clinician's fault)."""

    http_status = 502


class TokenError(AuthError):
    http_status = 502
    title = "No access token from the FHIR server"
    problem_type = "upstream-token"


BearerCode = Literal["invalid_request", "invalid_token", "insufficient_scope"]
_BEARER: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "Malformed authentication"),
    "invalid_token": (401, "Authentication required"),
    "insufficient_scope": (403, "Insufficient scope"),
}


class BearerError(TokenError):
    """A call to the REST API or a CDS service without a usable bearer token (RFC 6750 section 3).

    ``str(err)`` is the problem's ``detail``: it never contains the token itself.
    """

    def __init__(self, detail: str, code: BearerCode = "invalid_token", *, scope: str = "",
                 missing: bool = False) -> None:
        super().__init__(detail)
        self.code = code
        self.scope = scope
        self.missing = missing
        """No credentials at all: RFC 6750 says to answer without an ``error`` code then."""
        self.http_status, self.title = _BEARER[code]
        self.problem_type = code.replace("_", "-")

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.www_authenticate()}

    def www_authenticate(self) -> str:
        if self.missing:
            return 'Bearer realm="ketamine-screen"'
        value = f'Bearer realm="ketamine-screen", error="{self.code}"'
        value += f', error_description="{_quote(str(self))}"'
        if self.scope:
            value += f', scope="{self.scope}"'
        return value


class SessionExpired(TokenError):
    """No usable clinician session: missing cookie, unknown launch, or expired authorization."""

    http_status = 401
    title = "Session required"
    problem_type = "session"
    page = True
    draft_kept_for: str | None = None
    """Set when a draft of the session form is kept on the server ("12 hours"): the page says
    so, and how to get it back. Never set when none was kept."""


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def reported_error(group: BaseExceptionGroup[BaseException], *,
                   prefer: Callable[[BaseException], bool] | None = None) -> BaseException:
    """The one error to report for a failed TaskGroup: the first leaf ``prefer`` picks, else the
    first deliberate (ServiceError) one, else the first leaf."""
    leaves = list(_leaves(group))
    if prefer is not None:
        picked = next((exc for exc in leaves if prefer(exc)), None)
        if picked is not None:
            return picked
    return next((exc for exc in leaves if isinstance(exc, ServiceError)),
                leaves[0] if leaves else group)
