"""Decode a FHIR Bundle (a search page, a file, an export's collection) into the read model.

One pass in C when every entry is readable, which is the common case: the whole Bundle is decoded
straight into :mod:`service.fhir.read_model` classes. When that fails (an entry with a malformed
element, a type screening does not read, an entry without a resource), the Bundle is read again
entry by entry, so that one bad entry costs only itself: it becomes a :class:`ReadProblem` naming
it, and every other entry is kept.

Spec: https://hl7.org/fhir/R4/bundle.html; ``search.mode`` is
https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.search.mode and ``link`` with
``relation`` ``next`` is https://hl7.org/fhir/R4/http.html#paging.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from service.errors import BundleError
from service.fhir.primitives import Code, UnsignedInt, Uri, check_code
from service.fhir.projection import Projected, decode_resource
from service.fhir.read_model import AnyResource
from service.screening.model import ReadProblem

__all__ = ["BundleEntry", "DecodedBundle", "decode_bundle"]


class Search(msgspec.Struct, gc=False):
    mode: Code | None = None

    def __post_init__(self) -> None:
        check_code(self.mode, "mode")


class Link(msgspec.Struct, gc=False):
    relation: str | None = None
    url: str | None = None


class BundleEntry(msgspec.Struct, gc=False):
    """One readable entry of a Bundle."""

    fullUrl: Uri | None = None
    search: Search | None = None
    resource: Projected | None = None

    @property
    def mode(self) -> str:
        """``match`` (the default), ``include`` or ``outcome``."""
        return (self.search.mode if self.search is not None else None) or "match"


class _FastEntry(BundleEntry):
    """The decoder's view: only the projected types (msgspec picks one by its tag)."""

    resource: AnyResource | None = None


class _FastBundle(msgspec.Struct, gc=False):
    resourceType: str
    type: Code | None = None
    total: UnsignedInt | None = None
    link: list[Link] | None = None
    entry: list[_FastEntry] | None = None

    def __post_init__(self) -> None:
        check_code(self.type, "type")


@dataclass(slots=True)
class DecodedBundle:
    type: str | None
    total: int | None
    next_url: str | None
    entries: Sequence[BundleEntry]
    """The readable entries, in order."""
    problems: list[ReadProblem] = field(default_factory=list)
    """The entries that could not be read, each named by ``Type/id``, ``fullUrl`` or
    ``entry[N]``."""


def _next_url(links: Sequence[Link] | None) -> str | None:
    for link in links or ():
        if link.relation == "next" and link.url:
            return link.url
    return None


class _LooseEntry(msgspec.Struct, gc=False):
    fullUrl: Any = None
    search: Any = None
    resource: msgspec.Raw = msgspec.Raw()


class _LooseBundle(msgspec.Struct, gc=False):
    resourceType: Any = None
    type: Any = None
    total: Any = None
    link: Any = None
    entry: msgspec.Raw = msgspec.Raw()


_FAST = msgspec.json.Decoder(_FastBundle)
_LOOSE = msgspec.json.Decoder(_LooseBundle)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_LOOSE_ENTRY = msgspec.json.Decoder(_LooseEntry)


def decode_bundle(body: bytes | str, source: str) -> DecodedBundle:
    """Every entry of a Bundle: the readable ones in ``entries``, the others in ``problems``.

    Whole-body problems raise :class:`BundleError` with the messages the Bundle reader has
    always given (``source`` names the body in them).
    """
    try:
        fast = _FAST.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return _entry_by_entry(body, source)
    if fast.resourceType != "Bundle":
        raise BundleError(f"{source}: not a FHIR Bundle (resourceType is {fast.resourceType!r})")
    entries = fast.entry or []
    if any(entry.resource is None for entry in entries):
        return _entry_by_entry(body, source)
    return DecodedBundle(fast.type, fast.total, _next_url(fast.link), entries)


def _entry_by_entry(body: bytes | str, source: str) -> DecodedBundle:
    try:
        loose = _LOOSE.decode(body)
    except msgspec.ValidationError:  # not an object: but is it JSON at all?
        raise _not_an_object(body, source) from None
    except msgspec.DecodeError as exc:
        raise BundleError(f"{source}: not JSON ({_position(body, str(exc))})") from exc
    except RecursionError as exc:
        raise BundleError(f"{source}: not JSON (nested too deeply)") from exc
    if loose.resourceType != "Bundle":
        raise BundleError(f"{source}: not a FHIR Bundle (resourceType is "
                          f"{loose.resourceType!r})")
    raws: list[msgspec.Raw] = []
    if len(loose.entry) and memoryview(loose.entry)[:4].tobytes() != b"null":
        try:
            raws = _RAW_LIST.decode(loose.entry)
        except msgspec.ValidationError as exc:
            raise BundleError(f"{source}: Bundle.entry is not a list") from exc
    entries: list[BundleEntry] = []
    problems: list[ReadProblem] = []
    for index, raw in enumerate(raws):
        entry, problem = _one_entry(raw, index)
        if entry is not None:
            entries.append(entry)
        if problem is not None:
            problems.append(problem)
    return DecodedBundle(_code(loose.type), _checked(loose.total, UnsignedInt),
                         _next_url(_checked(loose.link, list[Link])), entries, problems)


def _not_an_object(body: bytes | str, source: str) -> BundleError:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:  # a number beyond any float is a DecodeError too
        return BundleError(f"{source}: not JSON ({_position(body, str(exc))})")
    except RecursionError:
        return BundleError(f"{source}: not JSON (nested too deeply)")
    return BundleError(f"{source}: not a FHIR Bundle (resourceType is "
                       f"{type(value).__name__!r})")


def _one_entry(raw: msgspec.Raw, index: int) -> tuple[BundleEntry | None, ReadProblem | None]:
    try:
        loose = _LOOSE_ENTRY.decode(raw)
    except msgspec.ValidationError:
        return None, ReadProblem(f"entry[{index}]", "entry has no resource")
    full_url = _checked(loose.fullUrl, Uri)
    label = full_url or f"entry[{index}]"
    if memoryview(loose.resource)[:1].tobytes() != b"{":
        return None, ReadProblem(label, "entry has no resource")
    resource, problem = decode_resource(loose.resource)
    if resource is None:
        if problem is not None and "/" not in problem.reference:
            problem = ReadProblem(label, problem.problem)  # no Type/id to name it by
        return None, problem
    return BundleEntry(full_url, _checked(loose.search, Search), resource), None


def _checked(value: Any, kind: Any) -> Any:
    """``value`` as ``kind``, or None: a malformed Bundle-level element is not worth an error."""
    try:
        return msgspec.convert(value, kind) if value is not None else None
    except msgspec.ValidationError:
        return None


def _code(value: Any) -> str | None:
    code: str | None = _checked(value, Code)
    try:
        check_code(code, "type")
    except ValueError:
        return None
    return code


def _position(body: bytes | str, message: str) -> str:
    """``line L, column C`` from msgspec's ``(byte N)``, as the json module reports it."""
    text = body if isinstance(body, bytes) else body.encode()
    found = re.search(r"\(byte (\d+)\)", message)
    if not found:
        return "ends too early" if "truncated" in message else message.lower()
    offset = int(found[1])
    before = text[:offset]
    newline = b"\n"
    return f"line {before.count(newline) + 1}, column {offset - before.rfind(newline)}"
