"""The launch context beyond ``patient`` and ``encounter``: ``fhirContext`` and ``appContext``.

https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#fhircontext: SMART 2.1
sends ``fhirContext`` as an array of objects (``reference``, and optionally ``canonical``,
``identifier``, ``type``, ``role``); 2.0 sent plain reference strings, which are taken too.
``appContext`` is an opaque string the EHR hands to the app.

The token response comes from the EHR but its context ends up in request URLs and in what is
written to the chart, so only what is bounded and checked is kept: at most
:data:`MAX_FHIR_CONTEXT` entries, each a relative ``Type/id`` reference whose id has the strict
FHIR id grammar (:func:`service.fhir.references.is_fhir_id`). Everything else is dropped, and
only the count is logged: the references and the app context are PHI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.fhir.references import Ref

__all__ = [
    "MAX_APP_CONTEXT_CHARS",
    "MAX_FHIR_CONTEXT",
    "ContextItem",
    "LaunchContext",
    "parse_app_context",
    "parse_fhir_context",
    "parse_launch_context",
]

log = logging.getLogger(__name__)

MAX_FHIR_CONTEXT = 20
"""Entries of ``fhirContext`` looked at; any beyond are dropped (a launch names a handful)."""
MAX_APP_CONTEXT_CHARS = 4096
"""A longer ``appContext`` is dropped rather than cut (a cut one would mean something else)."""
_MAX_ROLE_CHARS = 256


@dataclass(frozen=True, slots=True)
class ContextItem:
    """One kept ``fhirContext`` entry."""

    reference: str
    """Relative ``Type/id``."""
    role: str | None = None
    """The entry's ``role`` (an absolute URI; SMART's ``launch`` role when absent)."""

    @property
    def type(self) -> str:
        return self.reference.partition("/")[0]

    @property
    def id(self) -> str:
        return self.reference.partition("/")[2]

    def to_json(self) -> dict[str, str]:
        return {"reference": self.reference, **({"role": self.role} if self.role else {})}


def _item(entry: object) -> ContextItem | None:
    """The entry when it is a usable relative reference, else None."""
    role: object = None
    if isinstance(entry, Mapping):
        declared = entry.get("type")
        role = entry.get("role")
        entry = entry.get("reference")
    else:
        declared = None
    ref = Ref.parse(entry)
    if ref is None or ref.form != "relative" or ref.version is not None or ref.type is None:
        return None  # absolute (another server's), versioned, contained, urn, or no reference
    if declared is not None and declared != ref.type:
        return None
    if role is not None and not (isinstance(role, str) and 0 < len(role) <= _MAX_ROLE_CHARS
                                 and ":" in role and not any(c.isspace() for c in role)):
        return None
    return ContextItem(ref.key, role if isinstance(role, str) else None)


def parse_fhir_context(value: object) -> tuple[tuple[ContextItem, ...], int]:
    """The usable entries of a token response's ``fhirContext`` (in order, each once) and how
    many were dropped.

    >>> parse_fhir_context([{"reference": "MedicationRequest/m1"}, "Encounter/e1",
    ...                     {"reference": "https://other.example/fhir/Patient/p"}])
    ((ContextItem(reference='MedicationRequest/m1', role=None), \
ContextItem(reference='Encounter/e1', role=None)), 1)
    >>> parse_fhir_context(None), parse_fhir_context("Encounter/e1")
    (((), 0), ((), 1))
    """
    if value is None:
        return (), 0
    if not isinstance(value, list):
        return (), 1
    kept: list[ContextItem] = []
    dropped = max(0, len(value) - MAX_FHIR_CONTEXT)
    for entry in value[:MAX_FHIR_CONTEXT]:
        item = _item(entry)
        if item is None:
            dropped += 1
        elif all(k.reference != item.reference or k.role != item.role for k in kept):
            kept.append(item)
    return tuple(kept), dropped


def parse_app_context(value: object) -> tuple[str | None, int]:
    """``appContext`` when it is a non-empty string of bounded length; and 1 when one was
    dropped."""
    if value is None or value == "":
        return None, 0
    if isinstance(value, str) and len(value) <= MAX_APP_CONTEXT_CHARS:
        return value, 0
    return None, 1


@dataclass(frozen=True, slots=True)
class LaunchContext:
    items: tuple[ContextItem, ...] = ()
    app_context: str | None = None

    def first(self, resource_type: str) -> str | None:
        """The id of the first entry of ``resource_type`` without a role, else with any role."""
        found = [i for i in self.items if i.type == resource_type]
        plain = [i for i in found if i.role is None]
        return (plain or found)[0].id if found else None


def parse_launch_context(token: Mapping[str, Any]) -> LaunchContext | None:
    """The context of a token response; None when it carries neither field (a refresh answer
    usually does not: the launch's context then stays)."""
    if "fhirContext" not in token and "appContext" not in token:
        return None
    items, dropped = parse_fhir_context(token.get("fhirContext"))
    app_context, app_dropped = parse_app_context(token.get("appContext"))
    if dropped or app_dropped:
        # Counts only: the entries name the patient's records.
        log.warning("launch context: dropped %d fhirContext entries and %d appContext "
                    "(kept %d entries)", dropped, app_dropped, len(items))
    return LaunchContext(items, app_context)
