"""fhir.resources as the reference the read-side projection is checked against (tests only).

What the service did before the projection: one FHIR R4 resource (JSON) to a fhir.resources
**R4B** model (R4B reads R4 data), or the reason it is not one, naming locations and error types
only. The service no longer validates what it reads with fhir.resources; the projection's tests
show that it reads the same values, and refuses what fhir.resources refused where screening reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from service.fhir.bundle import collect
from service.screening.model import RawPatientData, ReadProblem


def parse_resource(data: Mapping[str, Any]) -> tuple[Resource | None, ReadProblem | None]:
    """An R4B model for ``data``, or the ReadProblem saying why not (without any PHI)."""
    rtype = data.get("resourceType")
    rid = data.get("id")
    ref = f"{rtype}/{rid}" if isinstance(rtype, str) and isinstance(rid, str) else str(rtype)
    if not isinstance(rtype, str):
        return None, ReadProblem(ref, "resource without resourceType")
    try:
        model = get_fhir_model_class(rtype)
    except (ValueError, KeyError):
        return None, ReadProblem(ref, f"unknown resource type {rtype!r}")
    try:
        parsed = model.model_validate(dict(data))
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in err["loc"]) + f": {err['type']}"
                          for err in exc.errors()[:5])
        return None, ReadProblem(ref, f"not valid FHIR R4: {where}")
    assert isinstance(parsed, Resource)
    return parsed, None


def parse_bundle(data: Mapping[str, Any], source: str) -> RawPatientData:
    """A Bundle (decoded JSON) read with fhir.resources models, assembled as the service does."""
    parsed: list[tuple[str | None, Any]] = []
    problems: list[ReadProblem] = []
    for entry in data["entry"]:
        model, problem = parse_resource(entry["resource"])
        if model is not None:
            parsed.append((entry.get("fullUrl"), model))
        elif problem is not None:
            problems.append(problem)
    return collect(parsed, problems, source, None)
