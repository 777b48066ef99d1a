"""A tiny in-memory FHIR server for unit tests, served through ``httpx.MockTransport``.

It knows just enough search (patient/subject, code, date=ge, _id, _include, _count, paging) to
exercise the client's planning and fallbacks; faults are injected with ``fail`` hooks. The real
behaviour is tested against the HAPI sandbox (tests marked integration).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

BASE = "http://fhir.test/fhir"

ALL_PARAMS = {
    "Patient": ["_id"],
    "Condition": ["patient", "subject", "_id"],
    "AllergyIntolerance": ["patient", "_id"],
    "MedicationStatement": ["patient", "subject", "_id"],
    "MedicationRequest": ["patient", "subject", "_id"],
    "Observation": ["patient", "subject", "code", "date", "_id"],
    "Medication": ["_id"],
}


def capability_statement(
    params: dict[str, list[str]] | None = None, includes: bool = True
) -> dict[str, Any]:
    params = ALL_PARAMS if params is None else params
    resources = []
    for rtype, names in params.items():
        entry: dict[str, Any] = {"type": rtype,
                                 "searchParam": [{"name": n, "type": "token"} for n in names]}
        if includes and rtype in ("MedicationStatement", "MedicationRequest"):
            entry["searchInclude"] = [f"{rtype}:medication"]
        resources.append(entry)
    return {"resourceType": "CapabilityStatement", "status": "active", "kind": "instance",
            "fhirVersion": "4.0.1", "format": ["json"],
            "rest": [{"mode": "server", "resource": resources}]}


def _json(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(data).encode(),
                          headers={"Content-Type": "application/fhir+json"})


def outcome(status: int, text: str) -> httpx.Response:
    return _json({"resourceType": "OperationOutcome",
                  "issue": [{"severity": "error", "code": "processing", "diagnostics": text}]},
                 status)


@dataclass
class FakeFhir:
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    statement: dict[str, Any] = field(default_factory=capability_statement)
    fail: Callable[[httpx.Request], httpx.Response | None] | None = None
    """Called first for every request; a response (or a raised httpx error) short-cuts it."""
    requests: list[httpx.Request] = field(default_factory=list)

    def add(self, *resources: dict[str, Any]) -> None:
        for resource in resources:
            self.resources[f"{resource['resourceType']}/{resource['id']}"] = resource

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            answer = self.fail(request)
            if answer is not None:
                return answer
        path = request.url.path.removeprefix("/fhir").strip("/")
        if path == "metadata":
            return _json(self.statement)
        parts = path.split("/")
        if request.method == "GET" and len(parts) == 2:
            found = self.resources.get(path)
            return _json(found) if found else outcome(404, f"Resource {path} is not known")
        if request.method == "GET" and len(parts) == 1:
            return self.search(parts[0], parse_qsl(request.url.query.decode()))
        if request.method == "POST" and path == "":
            return self.batch(json.loads(request.content))
        return outcome(400, "not supported by the fake")

    def batch(self, bundle: dict[str, Any]) -> httpx.Response:
        """A batch of reads only."""
        entries = []
        for entry in bundle.get("entry", []):
            found = self.resources.get(entry["request"]["url"])
            entries.append({"resource": found, "response": {"status": "200 OK"}} if found
                           else {"response": {"status": "404 Not Found"}})
        return _json({"resourceType": "Bundle", "type": "batch-response", "entry": entries})

    def search(self, rtype: str, query: list[tuple[str, str]]) -> httpx.Response:
        params = dict(query)
        offset, count = int(params.pop("_offset", "0")), int(params.pop("_count", "50"))
        include = params.pop("_include", None)
        hits = [r for r in self.resources.values() if r["resourceType"] == rtype
                and all(self._matches(r, name, value) for name, value in params.items())]
        page = hits[offset:offset + count]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        if include:
            for r in page:
                ref = str((r.get("medicationReference") or {}).get("reference"))
                ref = ref.removeprefix(BASE + "/")
                if ref in self.resources:
                    entries.append({"resource": self.resources[ref], "search": {"mode": "include"}})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "total": len(hits), "entry": entries, "link": []}
        if offset + count < len(hits):
            rest = [(k, v) for k, v in query if k != "_offset"]
            rest.append(("_offset", str(offset + count)))
            bundle["link"].append({"relation": "next", "url": str(
                httpx.URL(f"{BASE}/{rtype}", params=rest))})
        return _json(bundle)

    @staticmethod
    def _matches(resource: dict[str, Any], name: str, value: str) -> bool:
        if name in ("patient", "subject"):
            ref = (resource.get("subject") or resource.get("patient") or {}).get("reference")
            return ref == value or ref == f"Patient/{value}"
        if name == "_id":
            return resource["id"] in value.split(",")
        if name == "code":
            tokens = {t.split("|")[-1] for t in value.split(",")}
            return any(c.get("code") in tokens for c in resource["code"].get("coding", []))
        if name == "date":
            return str(resource.get("effectiveDateTime", "")) >= value.removeprefix("ge")
        raise AssertionError(f"the fake cannot search by {name}")
