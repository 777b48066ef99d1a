"""Idempotent FHIR transactions: every write is one all-or-nothing Bundle of conditional creates.

Spec: https://hl7.org/fhir/R4/http.html#transaction (atomic; ``urn:uuid`` fullUrls are rewritten to
the ids the server assigns) and https://hl7.org/fhir/R4/http.html#ccreate (``ifNoneExist``: when a
resource matching ``identifier=<system>|<value>`` exists, nothing is created and references to the
entry point at the existing one). Each entry's identifier is deterministic and its fullUrl is the
UUIDv5 of that identifier, so the same write sent twice yields one set of resources, and replaying a
transaction after a network error is safe: :func:`submit` does it (bounded, via the client's retry).
A status change (a Task completed) is a conditional update instead
(https://hl7.org/fhir/R4/http.html#cond-update: ``PUT Task?identifier=<system>|<value>``): sending
the same body again leaves the one resource as it was.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fhir.resources.R4B.bundle import Bundle, BundleEntry, BundleEntryRequest
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource

from service.errors import FhirProtocolError
from service.fhir.references import Ref

if TYPE_CHECKING:
    from service.fhir.client import FhirClient

__all__ = [
    "TransactionResult",
    "TxEntry",
    "build_transaction",
    "submit",
]

log = logging.getLogger(__name__)

_SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,254}$")
"""Identifier values we mint: nothing that a search token would read as a separator."""


@dataclass(frozen=True, slots=True)
class TxEntry:
    """One resource to create unless a resource with identifier ``system|value`` exists."""

    resource: Resource
    system: str
    value: str
    match: str = "identifier"
    """Search parameter for ``ifNoneExist``: ``identifier``, or ``_tag`` for resources without an
    identifier element (R4 Provenance): the resource then carries ``meta.tag`` ``system|value``."""
    method: str = "POST"
    """``POST`` (conditional create) or ``PUT`` (conditional update on the same search)."""

    def __post_init__(self) -> None:
        if self.match not in ("identifier", "_tag"):
            raise ValueError(f"unsupported match parameter {self.match!r}")
        if self.method not in ("POST", "PUT"):
            raise ValueError(f"unsupported method {self.method!r}")
        if not _SAFE_VALUE.match(self.value) or "|" in self.system or "," in self.system:
            raise ValueError(f"identifier unsuitable for a conditional create: {self.value!r}")

    @property
    def full_url(self) -> str:
        return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{self.system}|{self.value}')}"

    @property
    def if_none_exist(self) -> str:
        return f"{self.match}={self.system}|{self.value}"

    @property
    def identifier(self) -> Identifier:
        return Identifier(system=self.system, value=self.value)

    def reference(self, display: str | None = None) -> Reference:
        """A reference to this entry that resolves inside the transaction."""
        return Reference(reference=self.full_url, display=display)

    @property
    def resource_type(self) -> str:
        return str(self.resource.get_resource_type())


@dataclass(frozen=True, slots=True)
class TransactionResult:
    locations: tuple[str, ...]
    """``Type/id`` of each entry, in order (created or matched)."""
    statuses: tuple[str, ...]
    """``response.status`` of each entry: ``201 Created``, or ``200 OK`` when it already existed."""

    @property
    def created(self) -> int:
        return sum(status.startswith("201") for status in self.statuses)

    @property
    def matched(self) -> int:
        return len(self.locations) - self.created


def build_transaction(entries: Sequence[TxEntry]) -> Bundle:
    """A transaction Bundle of conditional creates (and updates); each resource must carry its
    identifier."""
    seen: set[tuple[str, str]] = set()
    bundle_entries: list[BundleEntry] = []
    for entry in entries:
        key = (entry.system, entry.value)
        if key in seen:
            raise ValueError(f"two entries share the identifier {entry.system}|{entry.value}")
        seen.add(key)
        if not _carries_key(entry):
            raise ValueError(f"{entry.resource_type} lacks its {entry.match} {entry.value}")
        if entry.method == "PUT":
            request = BundleEntryRequest(method="PUT",
                                         url=f"{entry.resource_type}?{entry.if_none_exist}")
        else:
            request = BundleEntryRequest(method="POST", url=entry.resource_type,
                                         ifNoneExist=entry.if_none_exist)
        bundle_entries.append(BundleEntry(fullUrl=entry.full_url, resource=entry.resource,
                                          request=request))
    return Bundle(type="transaction", entry=bundle_entries)


def _carries_key(entry: TxEntry) -> bool:
    if entry.match == "_tag":
        tags = entry.resource.meta.tag if entry.resource.meta is not None else None
        return any(t.system == entry.system and t.code == entry.value for t in tags or [])
    identifiers = getattr(entry.resource, "identifier", None)
    if isinstance(identifiers, Identifier):
        identifiers = [identifiers]
    return any(i.system == entry.system and i.value == entry.value for i in identifiers or [])


async def submit(client: FhirClient, bundle: Bundle) -> TransactionResult:
    """POST the transaction (retried: every entry is a conditional create); FhirError on failure.

    A rejected entry rejects the whole Bundle (FhirRejected with the server's OperationOutcome).
    """
    body = bundle.model_dump(mode="json", exclude_none=True)
    for entry in body.get("entry") or []:
        request = entry.get("request") or {}
        conditional = (request.get("ifNoneExist") if request.get("method") == "POST"
                       else "?" in str(request.get("url", "")))
        if not conditional:
            raise ValueError("only conditional creates and updates may be replayed; use "
                             "build_transaction")
    answer = await client.transaction(body, retry=True)
    return _result(answer, expected=len(body.get("entry") or []))


def _result(answer: dict[str, Any], *, expected: int) -> TransactionResult:
    if answer.get("resourceType") != "Bundle" or answer.get("type") != "transaction-response":
        raise FhirProtocolError("the transaction answer is not a transaction-response Bundle")
    entries = answer.get("entry") or []
    if len(entries) != expected:
        raise FhirProtocolError(f"transaction answer has {len(entries)} entries, "
                                f"expected {expected}")
    locations: list[str] = []
    statuses: list[str] = []
    for entry in entries:
        response = entry.get("response") or {}
        status = str(response.get("status", ""))
        if not status.startswith("2"):
            raise FhirProtocolError(f"transaction entry answered {status!r}")
        statuses.append(status)
        location = str(response.get("location", ""))
        # "Observation/123/_history/1" (absolute or relative) -> "Observation/123"
        ref = Ref.parse(location)
        locations.append(ref.key if ref is not None else location)
    result = TransactionResult(tuple(locations), tuple(statuses))
    log.info("transaction: %d entries, %d created, %d already present",
             len(entries), result.created, result.matched)
    return result
