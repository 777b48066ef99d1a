"""Search results as the FHIR client builds them: resources put in a searchset page (JSON bytes)
and decoded the way a server's answer is."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from service.fhir.paging import SearchResult
from service.fhir.read_bundle import decode_bundle


def search_result(matches: Iterable[Mapping[str, Any]] = (),
                  includes: Iterable[Mapping[str, Any]] = ()) -> SearchResult:
    """One page holding ``matches`` (``search.mode`` match) and ``includes`` (include)."""
    entries = [{"resource": r, "search": {"mode": "match"}} for r in matches]
    entries += [{"resource": r, "search": {"mode": "include"}} for r in includes]
    page = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    result = SearchResult()
    result.add(decode_bundle(json.dumps(page).encode(), "test"), "test")
    return result
