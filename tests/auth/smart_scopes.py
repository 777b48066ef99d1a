"""SMART scope enforcement of the test EHR's FHIR proxy: which scope each request needs.

HAPI enforces no scopes, so without this no test could see a scope-enforcing EHR refuse a
request. The rules follow https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html:
a v2 permission string is a subset of ``cruds`` in that order (c create, r read, u update,
d delete, s search); v1 ``read`` is ``rs``, ``write`` is ``cud`` and ``*`` is ``cruds``; ``*`` as
the resource type covers every type.

Simplifications of this test server, each chosen so a test of the app stays strict, not lax:

- Any level (``patient/``, ``user/``, ``system/``) covers the type: no compartment check is made
  (HAPI holds test data only; the app's patient filter is tested elsewhere).
- A granular v2 scope (``patient/Observation.rs?category=...``) grants nothing here: the app asks
  for none, so honouring it would only hide a mistake.
- ``PUT`` (an update or a conditional update, ``PUT Type?search``) needs ``u`` only, even when the
  conditional update creates; a conditional create (``POST`` with ``If-None-Exist`` or
  ``ifNoneExist``) needs ``c`` only, though the server searches to match.
- ``metadata`` and the next pages of a search (``[base]?_getpages=...``, HAPI's paging links) need
  nothing: the search itself was checked.
- An operation (``$name``) needs ``r`` on an instance and ``s`` on a type or the system; a
  system-level search or history needs ``*``.
- A searchset's ``_include``d resources need ``r`` on their type; those not covered are left out
  of the page (the request is not refused), as scope-enforcing EHRs filter them.
- In a ``transaction`` or ``batch`` Bundle every entry is checked before anything is forwarded:
  one uncovered entry refuses the whole request (a transaction is atomic; a scope-enforcing EHR
  answers 403 to the request, not per entry).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Check",
    "Refusal",
    "check_request",
    "covers",
    "granted_permissions",
    "needed_checks",
]

_SCOPE = re.compile(r"^(patient|user|system)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)$")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_ORDER = "cruds"
_METHOD = {"GET": "r", "HEAD": "r", "POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}


@dataclass(frozen=True, slots=True)
class Check:
    """One (resource type, interaction letter) a request needs; ``what`` names it in messages."""

    rtype: str
    interaction: str
    what: str


@dataclass(frozen=True, slots=True)
class Refusal:
    check: Check
    scope: str
    """The scope that would have covered it, at the token's level."""
    entry: int | None = None
    """0-based index of the Bundle entry that needed it."""

    @property
    def diagnostics(self) -> str:
        where = f" (Bundle entry {self.entry})" if self.entry is not None else ""
        return f"scope {self.scope} is required for {self.check.what}{where}"


def _permissions(text: str) -> str | None:
    """``cruds`` letters of a v1 or v2 permission string, or None when it is neither."""
    if text in _V1:
        return _V1[text]
    position = -1
    for letter in text:
        found = _ORDER.find(letter, position + 1)
        if found < 0:  # not in cruds, repeated, or out of order: not a v2 string
            return None
        position = found
    return text or None


def granted_permissions(scopes: Iterable[str]) -> dict[str, set[str]]:
    """Resource type (or ``*``) -> the interaction letters the granted scopes allow."""
    granted: dict[str, set[str]] = {}
    for scope in scopes:
        match = _SCOPE.match(scope)
        if match is None:
            continue
        letters = _permissions(match.group(3))
        if letters is not None:
            granted.setdefault(match.group(2), set()).update(letters)
    return granted


def covers(scopes: Iterable[str], rtype: str, interaction: str) -> bool:
    granted = granted_permissions(scopes)
    return interaction in granted.get(rtype, set()) | granted.get("*", set())


def _is_type(segment: str) -> bool:
    return bool(re.fullmatch(r"[A-Z][A-Za-z]+", segment))


def _check(method: str, url: str, *, conditional: bool = False) -> Check:
    """The check for one RESTful interaction; ``url`` is relative to the base, query included."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.strip("/").split("/") if s]
    has_query = bool(parts.query)
    rtype = segments[0] if segments and _is_type(segments[0]) else "*"
    what = f"{method} {rtype}"
    if segments and segments[-1].startswith("$"):
        return Check(rtype, "r" if len(segments) >= 3 else "s", f"{what}/{segments[-1]}")
    if rtype == "*":  # system-level search, history or an unknown path
        return Check("*", "s", f"{method} {parts.path or '/'}")
    instance = len(segments) >= 2 and segments[1] not in ("_search", "_history")
    if method in ("GET", "HEAD"):
        return Check(rtype, "r" if instance else "s", what)
    if method == "POST" and len(segments) >= 2 and segments[1] == "_search":
        return Check(rtype, "s", what + "/_search")
    if method == "POST":
        return Check(rtype, "c", what + (" (conditional create)" if conditional else ""))
    if method in ("PUT", "PATCH"):
        return Check(rtype, "u", what + (" (conditional update)" if has_query else ""))
    return Check(rtype, _METHOD.get(method, "d"), what)


def needed_checks(method: str, path: str, query: str, headers: dict[str, str],
                  body: Any) -> list[tuple[int | None, Check]]:
    """What a request to the FHIR base needs: (Bundle entry index or None, check) pairs.

    ``metadata`` needs nothing. A POST to the base with a ``transaction`` or ``batch`` Bundle needs
    what each entry's ``request`` needs.
    """
    path = path.strip("/")
    if path == "metadata" and method == "GET":
        return []
    if path == "" and method == "GET" and "_getpages=" in query:
        return []  # a page of a search already checked (HAPI's paging links point at the base)
    if path == "" and method == "POST" and isinstance(body, dict) \
            and body.get("resourceType") == "Bundle" \
            and body.get("type") in ("transaction", "batch"):
        needs: list[tuple[int | None, Check]] = []
        for index, entry in enumerate(body.get("entry") or []):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                needs.append((index, Check("*", "c", "a Bundle entry without a request")))
                continue
            entry_method = str(request.get("method", "")).upper()
            needs.append((index, _check(entry_method, str(request.get("url", "")),
                                        conditional=bool(request.get("ifNoneExist")))))
        return needs
    url = f"{path}?{query}" if query else path
    conditional = "if-none-exist" in {k.lower() for k in headers}
    return [(None, _check(method, url, conditional=conditional))]


def check_request(scopes: Iterable[str], level: str,
                  needs: list[tuple[int | None, Check]]) -> Refusal | None:
    """The first need the scopes leave uncovered, or None when every one is covered."""
    granted = list(scopes)
    for index, need in needs:
        if not covers(granted, need.rtype, need.interaction):
            return Refusal(need, f"{level}/{need.rtype}.{need.interaction}", index)
    return None
