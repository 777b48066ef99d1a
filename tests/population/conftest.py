"""Population fixtures: case-table patients under fresh ids, loaded into the HAPI sandbox.

Each run uses its own id prefix, so the shared sandbox (which other tests also fill) may hold
anything else: tests compare their own patients, and the server's Patient count, never totals
they cannot know.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.config import get_settings
from service.fhir.bundle import parse_bundle
from service.screening.engine import screen
from tests.builders import AS_OF, RXNORM, PatientBuilder
from tests.screening.cases import CASES, Case

RUN = uuid.uuid4().hex[:6]
"""This test process's id prefix (a FHIR id allows [A-Za-z0-9-.], 64 characters)."""


def renamed(case: Case, prefix: str) -> list[dict[str, Any]]:
    """The case's Patient and records with ``t001`` ids and references turned into
    ``<prefix>t001``."""
    pid = case.patient.pid
    text = json.dumps([case.patient.patient(), *case.patient.resources])
    return list(json.loads(re.sub(rf'(?<=["/]){pid}(?=["-])', f"{prefix}{pid}", text)))


def bundle_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r}
                      for r in resources]}


def bundle_verdict(resources: list[dict[str, Any]]) -> str:
    """The Bundle path's verdict: the reference every other path must equal."""
    pid = resources[0]["id"]
    return screen(parse_bundle(bundle_of(resources), "bundle", pid), AS_OF).verdict.label


def group(gid: str, pids: list[str]) -> dict[str, Any]:
    return {"resourceType": "Group", "id": gid, "type": "person", "actual": True,
            "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in pids]}


def load(base_url: str, resources: list[dict[str, Any]], chunk: int = 400) -> None:
    """PUT with client ids in transactions (Patients and Medications first, Groups last)."""
    order = {"Patient": 0, "Medication": 0, "Group": 2}
    ordered = sorted(resources, key=lambda r: order.get(r["resourceType"], 1))
    with httpx.Client(timeout=300) as http:
        for start in range(0, len(ordered), chunk):
            entries = [{"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r,
                        "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                       for r in ordered[start:start + chunk]]
            answer = http.post(base_url, json={"resourceType": "Bundle", "type": "transaction",
                                               "entry": entries},
                               headers={"Content-Type": "application/fhir+json"})
            assert answer.status_code == 200, answer.text[:1000]


def patient_count(base_url: str) -> int:
    answer = httpx.get(f"{base_url}/Patient", params={"_summary": "count"}, timeout=60)
    answer.raise_for_status()
    return int(answer.json()["total"])


def synthetic(pid: str, n: int) -> list[dict[str, Any]]:
    """A varied, invented patient of about 16 records (some with a referenced Medication)."""
    p = PatientBuilder(pid, birth=f"19{50 + n % 50}-0{1 + n % 9}-15")
    for k in range(10):
        p.bp(110 + (n * 7 + k * 13) % 90, 65 + (n * 3 + k * 5) % 45, days_ago=1 + k * 3)
    p.condition("F33.1", "Major depressive disorder, recurrent, moderate")
    if n % 5 == 0:
        p.condition("I71.4", "Abdominal aortic aneurysm")
    if n % 4 == 1:
        p.medication("6813", "methadone", form="referenced")
    p.medication("36437", "sertraline 50 MG Oral Tablet", system=RXNORM)
    if n % 7 == 3:
        p.allergy("6130", "ketamine")
    return [p.patient(), *p.resources]


CHOSEN = [case for index, case in enumerate(CASES)
          if index % 3 == 0 or case.verdict == "insufficient-data" or "referenced" in case.name]
"""About a third of the table (all four verdicts, the referenced-Medication case included)."""


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The sandbox finishes a small export in seconds but always asks for 120 s between polls."""
    monkeypatch.setenv("KETAMINE_BULK_POLL_MAX_SECONDS", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
