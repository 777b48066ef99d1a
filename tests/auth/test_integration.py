"""The whole EHR launch against the HAPI sandbox: the FHIR reads go through the token-checking
proxy of the test authorization server, so they prove the access token is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from joserfc.jwk import ECKey, RSAKey

from service.auth.backend import BackendServicesAuth
from service.config import Settings
from service.main import create_app
from tests.auth.conftest import APP_ORIGIN, register_client
from tests.auth.flow import authorize, callback
from tests.auth.smart_server import SmartTestServer

pytestmark = pytest.mark.integration


def seed_patient(fhir_base_url: str, patient_id: str) -> None:
    patient = {"resourceType": "Patient", "id": patient_id, "gender": "female",
               "birthDate": "1980-04-02", "name": [{"family": "Launchtest", "given": ["Ada"]}]}
    resp = httpx.put(f"{fhir_base_url}/Patient/{patient_id}", json=patient, timeout=60,
                     headers={"Content-Type": "application/fhir+json"})
    assert resp.status_code in (200, 201), resp.text


@pytest.fixture(scope="module")
def hapi_smart_server(fhir_base_url: str, client_rsa_key: RSAKey,
                      client_ec_key: ECKey) -> Iterator[SmartTestServer]:
    server = SmartTestServer(fhir_upstream=fhir_base_url)
    server.state.smart_style_url = f"{server.base_url}/smart-style.json"
    server.start()
    register_client(server, client_rsa_key, client_ec_key, [f"{APP_ORIGIN}/callback"])
    yield server
    server.stop()


async def test_ehr_launch_reads_the_patient_through_the_proxy(
        fhir_base_url: str, patient_id: str, hapi_smart_server: SmartTestServer,
        make_settings: Callable[..., Settings], browser_http: httpx.AsyncClient) -> None:
    seed_patient(fhir_base_url, patient_id)
    server = hapi_smart_server
    app = create_app(make_settings(server))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=APP_ORIGIN) as client:
        cb, _ = await authorize(client, browser_http, "/launch",
                                {"iss": server.fhir_base, "launch": server.new_launch(patient_id)})
        done = await callback(client, cb)
        assert done.status_code == 303, done.text
        page = await client.get(done.headers["location"], headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    assert patient_id in page.text
    assert "Launchtest" in page.text  # need_patient_banner honoured: the banner names the patient
    reads = [(path, ok) for _, path, ok in server.state.fhir_requests if patient_id in path]
    assert (f"Patient/{patient_id}", True) in reads
    assert all(ok for _, path, ok in server.state.fhir_requests if path != "metadata")


async def test_backend_services_read_from_hapi(
        fhir_base_url: str, patient_id: str, hapi_smart_server: SmartTestServer,
        make_settings: Callable[..., Settings], key_files: dict[str, object]) -> None:
    seed_patient(fhir_base_url, patient_id)
    settings = make_settings(hapi_smart_server, client_secret=None,
                             private_key_file=key_files["ES384"], private_key_alg="ES384")
    auth = await BackendServicesAuth.for_issuer(settings, hapi_smart_server.fhir_base)
    async with httpx.AsyncClient(base_url=hapi_smart_server.fhir_base, auth=auth) as http:
        resp = await http.get(f"/Patient/{patient_id}")
    assert resp.status_code == 200 and resp.json()["id"] == patient_id
