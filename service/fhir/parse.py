"""One FHIR R4 resource (JSON) to a fhir.resources **R4B** model, or the reason it is not one.

R4B models read R4 data (the default ``fhir.resources`` import is R5 and is never used here).
Problems name locations and error types only: the rejected values may be patient data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from service.screening.model import ReadProblem

__all__ = ["parse_resource"]


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
    if not isinstance(parsed, Resource):  # pragma: no cover - every resource model is one
        return None, ReadProblem(ref, "not a resource")
    return parsed, None
