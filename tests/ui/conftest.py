"""Fixtures for the clinician's pages: the app in demo mode, and a launch opened through the
demo launcher (the same session store and cookie the SMART callback uses)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app
from tests.servers import ThreadServer
from tests.ui.browser_tools import ARGS, chromium_path


def demo_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"environment": "test", "cookie_secure": False, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def demo_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("KETAMINE_DEMO", "1")
    with TestClient(create_app(demo_settings()), base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
def demo_base_url() -> Iterator[str]:
    """The app in demo mode under uvicorn, as ``make demo-ui`` runs it (Secure cookie on
    http://127.0.0.1)."""
    old = os.environ.get("KETAMINE_DEMO")
    os.environ["KETAMINE_DEMO"] = "1"
    try:
        app = create_app(demo_settings(cookie_secure=True))
    finally:
        if old is None:
            del os.environ["KETAMINE_DEMO"]
        else:
            os.environ["KETAMINE_DEMO"] = old
    server = ThreadServer(app, lifespan="on").start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright (a missing Chromium fails, never skips)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)
        yield chromium
        chromium.close()


def open_demo(client: TestClient, patient: str, to: str = "app", banner: str = "1") -> str:
    """Launch a demo patient; the launch handle (``ctx``)."""
    resp = client.get(f"/demo/launch/{patient}", params={"to": to, "banner": banner},
                      follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return parse_qs(urlsplit(resp.headers["location"]).query)["ctx"][0]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


VALID_SESSION = {
    "session_date": "2026-11-27", "tz": "Europe/Zurich",
    "pre_dose.time": "09:00", "pre_dose.systolic": "128", "pre_dose.diastolic": "82",
    "pre_dose.heart_rate": "72", "pre_dose.spo2": "98",
    "product": "esketamine", "route": "intranasal", "dose_time": "09:10", "dose_mg": "56",
    "at_40_min.time": "09:50", "at_40_min.systolic": "152", "at_40_min.diastolic": "94",
    "at_40_min.heart_rate": "84", "at_40_min.spo2": "97",
    "moaas": "4", "cadss_total": "14",
    "discharge.time": "11:15", "discharge.systolic": "130", "discharge.diastolic": "80",
    "discharge.heart_rate": "70", "discharge.spo2": "98",
    "monitoring_minutes": "125", "ready_to_leave": "yes", "ae_other_text": "",
    "setting": "Lakeside Clinic", "monitoring_clinician": "Sam Rivera, RN",
    "concomitant.benzodiazepines": "no", "concomitant.sedative-hypnotics": "no",
    "concomitant.psychostimulants": "no", "concomitant.maois": "no",
    "vitals_ok_pre_dose": "yes", "dose_preset": "56", "lot_number": "LOT-24A117",
    "respiratory_depression": "no", "lowest_spo2": "95", "vitals_ok_end": "yes",
    "ready_time": "11:15",
}
"""A complete, valid esketamine session as the form posts it (every REMS form item answered)."""
