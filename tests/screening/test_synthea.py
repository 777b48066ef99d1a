"""Synthea-shaped patients (tests/data/synthea) through the CLI's JSON and through HAPI.

Each expectation is derived by hand from the clinical reference (ruleset v2) at 2020-06-01:
the verdict per product, the rules that fire with the records they cite (named here by the
record's code; "Patient" for the Patient), rules that must stay silent, and eligibility.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from service.cli import main
from service.fhir.client import FhirClient
from service.screening.engine import screen
from tests.data.synthea.build import AS_OF, HERE, patients

NR, CI, OK = "needs-review", "contraindicated", "suitable"
WHEN = datetime.fromisoformat(AS_OF.replace("Z", "+00:00"))

EXPECTED: dict[str, dict[str, Any]] = {
    "Gilberto_Oropeza": {
        "verdicts": (NR, NR),
        "fires": {"ix-opioids": ["1049221"], "pr-substance-use": ["5602001"],
                  "pr-tbi": ["127295002"], "info-cognitive-impairment": ["230265002"],
                  "info-age-65-or-older": ["Patient"]},
        "silent": ["ci-prior-stroke", "pr-cardiovascular", "info-phq9-baseline-missing"],
        "eligibility": ("not-documented", []),
    },
    "Marcela_Lakin": {
        "verdicts": (CI, CI),
        "fires": {"ci-pre-eclampsia": ["398254007"], "pr-pregnancy": ["72892002"],
                  "pr-bp-elevated": ["55284-4"]},
        "silent": ["info-pregnancy-stale", "ci-bp-uncontrolled"],
        "eligibility": ("not-documented", []),
    },
    "Rosalia_Hermann": {
        "verdicts": (OK, OK),
        "fires": {"info-pregnancy-stale": ["79586000"]},
        "silent": ["pr-pregnancy", "ci-pre-eclampsia", "pr-tbi"],
        "eligibility": ("not-documented", []),
    },
    "Donnell_Torres": {
        "verdicts": (NR, NR),
        "fires": {"pr-cardiovascular": ["49436004", "410429000", "429007001", "22298006",
                                        "399211009"],
                  "info-age-65-or-older": ["Patient"]},
        "severity": {"pr-cardiovascular": "high"},
        "silent": ["ix-sympathomimetics", "ci-aneurysm"],
        "eligibility": ("not-documented", []),
    },
    "Alden_Cormier": {
        "verdicts": (NR, NR),
        "fires": {"pr-respiratory-depression": ["87433001", "185086009"],
                  "info-weight-missing": [], "info-age-65-or-older": ["Patient"]},
        "products": {"info-weight-missing": ["ketamine"]},
        "silent": ["ix-xanthines", "ix-sympathomimetics"],
        "eligibility": ("not-documented", []),
    },
    "Ilse_Bergnaum": {
        "verdicts": (CI, NR),
        "fires": {"ci-prior-stroke": ["230690007"], "pr-prior-stroke": ["230690007"],
                  "info-seizure-disorder": ["128613002", "84757009"],
                  "info-age-65-or-older": ["Patient"]},
        "silent": ["pr-cardiovascular", "ci-intracerebral-haemorrhage"],
        "eligibility": ("not-documented", []),
    },
    "Shayla_Nolan": {
        "verdicts": (NR, NR),
        "fires": {"pr-pregnancy": ["72892002"], "info-age-18-to-24": ["Patient"]},
        "silent": ["pr-tbi", "info-pregnancy-stale"],
        "eligibility": ("not-documented", []),
    },
    "Milan_Brekke": {
        "verdicts": (OK, OK),
        "fires": {},
        "silent": ["pr-psychosis", "info-phq9-baseline-missing"],
        "eligibility": ("trd-documented", [("fluoxetine", 59, "repeated orders"),
                                           ("sertraline", 508, "ongoing")]),
    },
    "Sherman_McKenzie": {
        "verdicts": (NR, NR),
        "fires": {"pr-bp-elevated": ["55284-4"], "info-overdose-history": ["55680006"],
                  "info-phq9-baseline-missing": []},
        "silent": ["pr-psychosis", "pr-substance-use"],
        "eligibility": ("not-documented", []),
    },
    "Keira_Jast": {
        "verdicts": (OK, OK),
        "fires": {},
        "silent": ["pr-pregnancy", "ci-pre-eclampsia", "info-pregnancy-stale"],
        "eligibility": ("not-documented", []),
    },
    "Tyson_Lind": {
        "verdicts": (NR, NR),
        "fires": {"pr-age-under-18": ["Patient"]},
        "silent": ["ix-sympathomimetics", "ci-hypersensitivity"],
        "eligibility": ("not-documented", []),
    },
    "Hester_Kuvalis": {
        "verdicts": (CI, CI),
        "fires": {"ci-bp-uncontrolled": ["55284-4"], "ix-opioids": ["1049621"],
                  "ix-nmda-antagonists": ["996740"],
                  "info-cognitive-impairment": ["26929004"],
                  "info-age-65-or-older": ["Patient"], "info-phq9-baseline-missing": []},
        "silent": ["pr-bp-elevated"],
        "eligibility": ("not-documented", []),
    },
}


def _refs(bundle: dict[str, Any], code: str) -> list[str]:
    out = []
    for entry in bundle["entry"]:
        r = entry["resource"]
        if code == "Patient" and r["resourceType"] == "Patient":
            out.append(f"Patient/{r['id']}")
            continue
        concepts = [r.get("code"), r.get("medicationCodeableConcept")]
        if any(c and any(x["code"] == code for x in c["coding"]) for c in concepts):
            out.append(f"{r['resourceType']}/{r['id']}")
    return out


def check(name: str, bundle: dict[str, Any], contract: dict[str, Any]) -> None:
    want = EXPECTED[name]
    assert (contract["verdicts"]["ketamine"], contract["verdicts"]["esketamine"]) == \
        want["verdicts"], (name, contract["verdicts"])
    by_rule = {f["rule"]: f for f in contract["findings"]}
    assert set(by_rule) == set(want["fires"]), (name, sorted(by_rule))
    for rule, codes in want["fires"].items():
        expected = sorted(ref for code in codes for ref in _refs(bundle, code))
        assert sorted(by_rule[rule]["evidence"]) == expected, (name, rule)
    for rule, severity in want.get("severity", {}).items():
        assert by_rule[rule]["severity"] == severity, (name, rule)
    for rule, products in want.get("products", {}).items():
        assert by_rule[rule]["products"] == products, (name, rule)
    for rule in want["silent"]:
        assert rule not in by_rule, (name, rule)
    status, trials = want["eligibility"]
    got = contract["eligibility"]
    assert got["status"] == status, (name, got)
    assert sorted((t["ingredient"], t["days"], t["basis"]) for t in got["trials"]) == trials


def test_the_files_are_what_build_writes() -> None:
    built = {p.name: p.bundle() for p in patients()}
    on_disk = {path.stem: json.loads(path.read_text()) for path in HERE.glob("*.json")}
    assert on_disk == built
    assert set(built) == set(EXPECTED) and len(built) >= 10


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_synthea_patient_through_the_cli(name: str) -> None:
    path: Path = HERE / f"{name}.json"
    out = io.StringIO()
    assert main(["screen", "--bundle", str(path), "--format", "json", "--as-of", AS_OF],
                out) == 0
    check(name, json.loads(path.read_text()), json.loads(out.getvalue()))


def _transaction(bundle: dict[str, Any]) -> dict[str, Any]:
    entries = [{"fullUrl": e["fullUrl"], "resource": e["resource"],
                "request": {"method": "PUT",
                            "url": f"{e['resource']['resourceType']}/{e['resource']['id']}"}}
               for e in bundle["entry"]]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_synthea_patient_through_the_sandbox(name: str, fhir_base_url: str) -> None:
    bundle = json.loads((HERE / f"{name}.json").read_text())
    patient = bundle["entry"][0]["resource"]["id"]
    async with FhirClient(fhir_base_url) as client:
        await client.transaction(_transaction(bundle), retry=True)
        raw = await client.read_patient_data(patient, as_of=WHEN, bp_window_days=30)
    contract = screen(raw, WHEN).as_contract()
    check(name, bundle, contract)
