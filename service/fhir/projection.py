"""Decode FHIR R4 JSON into the read model (:mod:`service.fhir.read_model`), checking what is read.

One resource (JSON bytes or text, an NDJSON line, or a dict already decoded) gives the projected
resource or the :class:`ReadProblem` saying why not (Bundles and search pages:
:mod:`service.fhir.read_bundle`). A problem
names the resource (``Type/id``) and the element (``valueQuantity.value``, in FHIRPath form) and
what the element should have been, never the value found: values may be patient data.

Types screening does not read (Encounter, Claim...) become :class:`OtherResource` unchecked; a
``resourceType`` that FHIR R4 does not define is a problem, as before (fhir.resources' own list
decides, so the answer is the same as when every resource was validated with it).

Spec: https://hl7.org/fhir/R4/json.html (the JSON form), https://hl7.org/fhir/R4/bundle.html.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec

from service.fhir.primitives import PATTERN_NAMES
from service.fhir.read_model import RESOURCE_TYPES, AnyResource, OtherResource, ReadResource
from service.screening.model import ReadProblem

__all__ = ["Projected", "as_json", "decode_resource", "problem_from"]

Projected = ReadResource | OtherResource
"""What a readable resource becomes."""

_DECODER = msgspec.json.Decoder(AnyResource)
_OTHER = msgspec.json.Decoder(OtherResource)


class _Head(msgspec.Struct, gc=False):
    """Just enough of a resource that failed to decode to name it."""

    resourceType: Any = None
    id: Any = None


_HEAD = msgspec.json.Decoder(_Head)


# -- One resource --------------------------------------------------------------------------------


def decode_resource(data: bytes | str | Mapping[str, Any]
                    ) -> tuple[Projected | None, ReadProblem | None]:
    """The read model of one resource, or the problem that makes it unreadable (no PHI)."""
    if isinstance(data, Mapping):
        return _convert(data)
    try:
        return _DECODER.decode(data), None
    except msgspec.ValidationError as exc:
        failure = str(exc)
    except msgspec.DecodeError:
        return None, ReadProblem("resource", "not JSON")
    except RecursionError:
        return None, ReadProblem("resource", "not JSON (nested too deeply)")
    if failure.startswith("Expected `object`"):  # at the top: valid JSON, but not an object
        return None, ReadProblem("resource", "not a JSON object")
    if failure.startswith("Invalid value ") and failure.endswith("- at `$.resourceType`"):
        try:  # a type we do not project: one more pass gives all we keep of it
            other = _OTHER.decode(data)
        except msgspec.ValidationError:
            pass  # its id or meta is malformed: named below
        else:
            return _other(other.resourceType, other.id, lambda: other)
    head = _HEAD.decode(data)
    if failure == "Object missing required field `resourceType`":
        return None, ReadProblem(_ref(head.resourceType, head.id), "resource without resourceType")
    if failure.endswith("- at `$.resourceType`"):
        return _other(head.resourceType, head.id, lambda: _OTHER.decode(data))
    return None, problem_from(_ref(head.resourceType, head.id), failure)


def _convert(data: Mapping[str, Any]) -> tuple[Projected | None, ReadProblem | None]:
    rtype, rid = data.get("resourceType"), data.get("id")
    if not isinstance(rtype, str):
        return None, ReadProblem(_ref(rtype, rid), "resource without resourceType")
    cls = RESOURCE_TYPES.get(rtype)
    if cls is None:
        return _other(rtype, rid, lambda: msgspec.convert(data, OtherResource))
    try:
        return msgspec.convert(data, cls), None
    except msgspec.ValidationError as exc:
        return None, problem_from(_ref(rtype, rid), str(exc))


def _other(rtype: object, rid: object, decode: Any) -> tuple[Projected | None, ReadProblem | None]:
    ref = _ref(rtype, rid)
    if not isinstance(rtype, str):
        return None, ReadProblem(ref, "resource without resourceType")
    if not _known_type(rtype):
        return None, ReadProblem(ref, f"unknown resource type {rtype!r}")
    try:
        return decode(), None
    except msgspec.ValidationError as exc:
        return None, problem_from(ref, str(exc))


@lru_cache(maxsize=512)
def _known_type(name: str) -> bool:
    """Whether FHIR R4 has this resource type (by fhir.resources' R4B models, as before)."""
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.resource import Resource

    try:
        return issubclass(get_fhir_model_class(name), Resource)
    except (ValueError, KeyError, ImportError):
        return False


def _ref(rtype: object, rid: object) -> str:
    if isinstance(rtype, str) and isinstance(rid, str):
        return f"{rtype}/{rid}"
    return str(rtype) if isinstance(rtype, str) else "resource"


# -- Problems ------------------------------------------------------------------------------------

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<where>[^`]*)`)?$", re.DOTALL)
_KINDS = {"float": "a number", "int": "an integer", "str": "a string", "bool": "a boolean",
          "object": "an object", "array": "an array"}


def problem_from(ref: str, failure: str) -> ReadProblem:
    """``not valid FHIR R4: <element>: <what it should be>`` from a msgspec message.

    msgspec's messages name types, patterns and bounds from our schema, but a few quote the
    value ("Invalid enum value 'x'"): only the recognised forms are translated, anything else
    reads "invalid value".
    """
    found = _AT.match(failure)
    what = found["what"] if found else ""
    where = (found["where"] or "").removeprefix(".") if found else ""
    # A missing element and a choice given twice name the element inside the object.
    inside = (re.fullmatch(r"Object missing required field `(\w+)`", what)
              or re.fullmatch(r"(?:choice|element) (\S+): "
                              r"(more than one form given|required|not a valid code)", what))
    if inside:
        where = f"{where}.{inside[1]}" if where else inside[1]
        text = "required" if what.startswith("Object") else inside[2]
        return ReadProblem(ref, f"not valid FHIR R4: {where}: {text}")
    return ReadProblem(ref, f"not valid FHIR R4: {where or 'resource'}: {_expected(what)}")


def _expected(what: str) -> str:
    if what.startswith("Expected `str` matching regex "):
        for pattern, name in PATTERN_NAMES.items():
            if what == f"Expected `str` matching regex {pattern!r}":
                return f"not a valid {name}"
        return "invalid value"
    if re.fullmatch(r"Expected `str` of length >= 1", what):
        return "expected a non-empty string"
    if what == "Number out of range" or re.fullmatch(r"Expected `(float|int)` [<>]=? \S+", what):
        return "number out of range"
    kind = re.fullmatch(r"Expected `(\w+)( \| null)?`, got `\w+`", what)
    if kind and kind[1] in _KINDS:
        return f"expected {_KINDS[kind[1]]}"
    return "invalid value"


def as_json(resource: Projected) -> dict[str, Any]:
    """The projected elements as JSON-ready builtins (absent elements left out)."""
    # Through JSON rather than to_builtins: the read model's tuples come back as lists.
    data: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(resource))
    return data
