"""The clinician's pages in a real browser: Debian's Chromium driven by Playwright.

The app runs in demo mode under uvicorn in a background thread; the demo launcher stands in for
the EHR and opens a launch session exactly as the SMART callback does (same store, same cookie).
Screenshots at an EHR side-panel width (420 px) and a desktop width (1024 px) go to
``test-artifacts/``. A missing Chromium is a failure, never a skip.
"""

from __future__ import annotations

import pytest

from tests.ui.browser_tools import WIDTHS
from tests.ui.browser_tools import no_horizontal_scroll as _no_horizontal_scroll
from tests.ui.browser_tools import shot as _shot
from tests.ui.conftest import VALID_SESSION

pytestmark = pytest.mark.browser

@pytest.mark.parametrize("width", WIDTHS)
def test_screening_then_session_in_chromium(browser: object, demo_base_url: str,
                                            width: int) -> None:
    base_url = demo_base_url
    context = browser.new_context(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(f"{base_url}/demo")
        _shot(page, f"demo-launcher-{width}.png")
        page.get_by_role("link", name="Screen Morgan Ellis").click()
        page.wait_for_url("**/app?ctx=*")
        assert page.locator("#verdict").inner_text() == "Suitable"
        assert page.locator("#patient-banner").is_visible()
        assert page.locator("#phq9-chart").is_visible() and page.locator("#bp-chart").is_visible()
        assert page.evaluate("getComputedStyle(document.querySelector('.verdict'))"
                             ".borderLeftColor") == "rgb(30, 107, 52)"  # app.css is applied
        _no_horizontal_scroll(page)
        _shot(page, f"screening-{width}.png")

        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip-link"

        page.get_by_role("button", name="Show what would be saved").click()
        assert page.locator("#bundle-json").is_visible()
        assert '"type": "transaction"' in page.locator("#bundle-json").inner_text()
        _no_horizontal_scroll(page)
        _shot(page, f"screening-saved-{width}.png")

        page.get_by_role("link", name="Document another session").click()
        page.wait_for_url("**/app/session?ctx=*")
        _no_horizontal_scroll(page)
        _shot(page, f"session-form-{width}.png")

        for name, value in VALID_SESSION.items():
            field = f"#f-{name.replace('.', '-')}"
            if page.locator(f"input[type=radio][name='{name}']").count():
                page.locator(f"input[name='{name}'][value='{value}']").check()
            elif name == "route":
                page.select_option(field, value)
            elif value:
                page.fill(field, value)
        page.fill("#f-pre_dose-systolic", "300")
        page.fill("#f-at_40_min-heart_rate", "fast")
        page.check("#f-ae")  # nausea
        page.check("#f-ae-other")
        page.get_by_role("button", name="Check and show what would be saved").click()

        error = page.locator("#f-pre_dose-systolic-error")
        assert "must be a number from 50 to 260 mmHg" in error.inner_text()
        systolic = page.locator("#f-pre_dose-systolic")
        assert systolic.input_value() == "300"
        assert systolic.get_attribute("aria-describedby") == "f-pre_dose-systolic-error"
        assert page.locator("#f-at_40_min-heart_rate").input_value() == "fast"
        assert "Describe the other adverse event" in page.locator("#f-ae_other_text-error") \
            .inner_text()
        assert page.locator("#f-ae").is_checked() and page.locator("#f-ae-other").is_checked()
        assert page.locator("#f-product-esketamine").is_checked()
        assert page.locator("#f-discharge-systolic").input_value() == "130"
        assert page.evaluate("document.activeElement.id") == "error-summary"
        _no_horizontal_scroll(page)
        _shot(page, f"session-errors-{width}.png")

        page.fill("#f-pre_dose-systolic", "128")
        page.fill("#f-at_40_min-heart_rate", "84")
        page.fill("#f-ae_other_text", "tingling lips")
        page.fill("#f-monitoring_minutes", "90")
        page.get_by_role("button", name="Check and show what would be saved").click()
        page.wait_for_selector("text=Treatment session recorded")
        assert "at least 120 minutes of monitoring" in page.locator(".warning").inner_text()
        assert page.locator("#bp-chart").is_visible()
        assert page.locator("#bp-chart line.threshold").count() == 4
        _no_horizontal_scroll(page)
        _shot(page, f"session-saved-{width}.png")
    finally:
        context.close()


ELIGIBILITY_DEMOS = {
    "demo-trd": ("trd-documented", "Needs review", "Suitable", 2, 0, "trd-documented"),
    "demo-single-trial": ("not-documented", "Suitable", "Suitable", 0, 1, "single-short-trial"),
}
"""Patient -> (eligibility, ketamine verdict, esketamine verdict, counted bars, other bars,
screenshot name)."""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("patient", sorted(ELIGIBILITY_DEMOS))
def test_both_verdicts_and_eligibility_in_chromium(browser: object, demo_base_url: str,
                                                   width: int, patient: str) -> None:
    status, ketamine, esketamine, counted, others, shot = ELIGIBILITY_DEMOS[patient]
    context = browser.new_context(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    try:
        page.goto(f"{demo_base_url}/demo/launch/{patient}?to=app")
        page.wait_for_url("**/app?ctx=*")
        assert page.locator("#verdict-ketamine .verdict-word").inner_text() == ketamine
        assert page.locator("#verdict-esketamine .verdict-word").inner_text() == esketamine
        left = page.locator("#verdict-ketamine").bounding_box()
        right = page.locator("#verdict-esketamine").bounding_box()
        assert left and right and left["y"] == right["y"] and left["x"] < right["x"], \
            "the two verdicts are not side by side"
        assert page.locator(f"#eligibility.eligibility-{status}").is_visible()
        timeline = page.locator("#trials-timeline")
        assert timeline.is_visible()
        assert timeline.locator("rect.trial-counted").count() == counted
        assert timeline.locator("rect.trial-not-counted").count() == others
        assert page.evaluate("document.getElementById(\"trials-timeline\")"
                             ".getAttribute(\"aria-labelledby\")") \
            == "trials-timeline-title trials-timeline-desc"
        assert "Dose adequacy was not assessed." in page.locator("#eligibility").inner_text()
        _no_horizontal_scroll(page)
        _shot(page, f"screening-{shot}-{width}.png")
    finally:
        context.close()
