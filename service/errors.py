"""Every error the service raises on purpose.

    ServiceError
    ├── InputError                 bad data handed to us (a file, a request body)
    │   └── BundleError            not JSON, not a Bundle, unparseable resources
    ├── MapError                   a fhir_maps data file is malformed (stops start-up)
    ├── FhirError                  the FHIR server failed us
    │   ├── FhirTimeout            no answer within the timeout, retries spent
    │   ├── FhirUnavailable        5xx / 429 / connection reset after retries
    │   ├── FhirNotFound           the patient (or another resource) does not exist
    │   ├── FhirAuthError          401 / 403, with the server's text
    │   ├── FhirRejected           4xx with an OperationOutcome (e.g. validation on write)
    │   └── FhirProtocolError      the answer is not the FHIR we asked for (malformed JSON)
    └── AuthError                  SMART launch / token / API bearer problems
        ├── LaunchError            bad iss, state, PKCE, callback
        └── TokenError             missing, expired or insufficient bearer token

Messages never carry PHI: resource ids and request ids only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

__all__ = [
    "AuthError",
    "BundleError",
    "FhirAuthError",
    "FhirError",
    "FhirNotFound",
    "FhirProtocolError",
    "FhirRejected",
    "FhirTimeout",
    "FhirUnavailable",
    "InputError",
    "LaunchError",
    "MapError",
    "ServiceError",
    "TokenError",
    "reported_error",
]


class ServiceError(Exception):
    """Base of every deliberate error; ``str(err)`` is safe to show and to log."""


class InputError(ServiceError):
    pass


class BundleError(InputError):
    pass


class MapError(ServiceError):
    pass


class FhirError(ServiceError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FhirTimeout(FhirError):
    pass


class FhirUnavailable(FhirError):
    pass


class FhirNotFound(FhirError):
    pass


class FhirAuthError(FhirError):
    pass


class FhirRejected(FhirError):
    pass


class FhirProtocolError(FhirError):
    pass


class AuthError(ServiceError):
    pass


class LaunchError(AuthError):
    pass


class TokenError(AuthError):
    pass


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
