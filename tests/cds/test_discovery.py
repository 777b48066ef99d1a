"""CDS Hooks discovery (https://cds-hooks.hl7.org/2.0/#discovery): public, two services."""

from __future__ import annotations

import re

import httpx

TOKEN = re.compile(r"\{\{([^}]*)\}\}")


async def test_discovery_lists_both_services(api: httpx.AsyncClient) -> None:
    resp = await api.get("/cds-services")
    assert resp.status_code == 200
    services = {s["id"]: s for s in resp.json()["services"]}
    assert set(services) == {"ketamine-order-select", "ketamine-order-sign"}
    assert services["ketamine-order-select"]["hook"] == "order-select"
    assert services["ketamine-order-sign"]["hook"] == "order-sign"
    for service in services.values():
        assert service["title"] and service["description"]
        prefetch = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        assert prefetch["conditions"] == "Condition?patient={{context.patientId}}"
        assert prefetch["allergies"] == "AllergyIntolerance?patient={{context.patientId}}"
        # Every status (issue 11: eligibility counts stopped and completed trials).
        for key, kind in (("medicationStatements", "MedicationStatement"),
                          ("medicationDispenses", "MedicationDispense")):
            assert prefetch[key] == f"{kind}?patient={{{{context.patientId}}}}"
        # Every intent as well: US Core's required search is patient + intent (issue 14).
        assert prefetch["medicationRequests"] == (
            "MedicationRequest?patient={{context.patientId}}&intent=proposal,plan,order,"
            "original-order,reflex-order,filler-order,instance-order,option")
        assert len(prefetch) == 8
        bp = prefetch["bloodPressure"]
        for code in ("85354-9", "8480-6", "8462-4"):
            assert f"http://loinc.org|{code}" in bp
        assert "_sort=-date" in bp and "_count=" in bp
        for template in prefetch.values():
            # The spec's tokens are context fields only: no date arithmetic.
            assert set(TOKEN.findall(template)) == {"context.patientId"}, template
