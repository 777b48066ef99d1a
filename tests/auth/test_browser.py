"""The EHR launch in a real browser (headless Debian Chromium via Playwright), inside an iframe-free
top-level window: EHR -> /launch -> authorize -> /callback -> /app, with a screenshot."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, RSAKey

from service.config import Settings
from service.main import create_app
from tests.auth.conftest import register_client
from tests.auth.smart_server import SmartTestServer
from tests.auth.test_integration import seed_patient
from tests.servers import ThreadServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser_world(fhir_base_url: str, client_rsa_key: RSAKey,
                  client_ec_key: ECKey) -> Iterator[tuple[SmartTestServer, str]]:
    """The test EHR (auth server + FHIR proxy to HAPI) and the service, both on real ports."""
    app_port = free_port()
    app_origin = f"http://127.0.0.1:{app_port}"
    server = SmartTestServer(fhir_upstream=fhir_base_url).start()
    register_client(server, client_rsa_key, client_ec_key, [f"{app_origin}/callback"])
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", client_id="ketamine-screen",
        client_secret="test-only-client-secret", allowed_issuers=[server.fhir_base],
        redirect_uri=f"{app_origin}/callback", cookie_secure=True)
    app_server = ThreadServer(create_app(settings), port=app_port).start()
    yield server, app_origin
    app_server.stop()
    server.stop()


def test_ehr_launch_in_chromium(browser_world: tuple[SmartTestServer, str], fhir_base_url: str,
                                patient_id: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run "
                    "'apt-get update && apt-get install -y chromium' (the browser test needs it)")
    from playwright.sync_api import sync_playwright

    server, app_origin = browser_world
    seed_patient(fhir_base_url, patient_id)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            # The EHR opens the app: /ehr mints a launch id and redirects to /launch?iss&launch.
            page.goto(f"{server.base_url}/ehr?app={app_origin}/launch&patient={patient_id}")
            page.wait_for_selector("#patient-id", timeout=60_000)
            assert page.url.startswith(f"{app_origin}/app?ctx=")
            assert page.inner_text("#patient-id") == patient_id
            assert "Ada Launchtest" in page.inner_text("#patient-banner")
            page.screenshot(path=str(ARTIFACTS / "smart-ehr-launch.png"), full_page=True)
            cookies = page.context.cookies(app_origin)
        finally:
            browser.close()
    sid = [c for c in cookies if c["name"] == "__Host-ketamine-sid"]
    assert sid and sid[0]["httpOnly"] and sid[0]["secure"] and sid[0]["sameSite"] == "None"
    tokens = set(server.state.access_tokens)
    assert not [c for c in cookies if c["value"] in tokens]
