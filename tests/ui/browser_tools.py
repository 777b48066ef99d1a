"""What the browser tests share: Debian's Chromium, screenshots, axe-core, keyboard-only driving.

axe-core is a test dependency only (``make axe`` puts the pinned npm package in the virtualenv);
it is evaluated in the page through the DevTools protocol, which the app's Content-Security-Policy
does not govern, so the page under test is the page the clinician gets. Keyboard helpers move
focus with Tab and act with Space, arrows, typing and Enter, as a keyboard-only user does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"
WIDTHS = (420, 1024)
AXE_JS = Path(os.environ.get("AXE_JS", ROOT / ".venv/axe/node_modules/axe-core/axe.min.js"))
BLOCKING = ("serious", "critical")
"""axe impacts that fail a test."""

FOCUSABLE = ("a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), "
             "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])")


def chromium_path() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium "
                    "(`make browser`, or apt-get install -y chromium) to run the browser tests")
    return CHROMIUM


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    inner = page.evaluate("window.innerWidth")
    assert width <= inner, f"page is {width}px wide in a {inner}px window"


def axe_check(page: Any, name: str) -> list[str]:
    """Run axe-core (WCAG 2.x A/AA and best-practice rules) on the page; fail on any serious or
    critical violation. Returns the ids of the rules that ran and passed or did not apply."""
    if not AXE_JS.exists():
        pytest.fail(f"axe-core not found at {AXE_JS}: run `make axe` (npm install of the pinned "
                    "axe-core into the virtualenv)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations', 'passes']});
        return {violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})),
                passes: r.passes.map(p => p.id), inapplicable: r.inapplicable.map(p => p.id)};
    }""")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"axe on {name}: {json.dumps(blocking, indent=1)}"
    return [*result["passes"], *result["inapplicable"]]


# -- Keyboard only ------------------------------------------------------------------------------

def _active_matches(page: Any, selector: str) -> bool:
    return bool(page.evaluate(
        "(s) => !!document.activeElement && document.activeElement.matches(s)", selector))


def tab_to(page: Any, selector: str, limit: int = 300) -> None:
    """Press Tab until the focused element matches ``selector`` (forward from where focus is)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if _active_matches(page, selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def key_fill(page: Any, name: str, value: str) -> None:
    """Give the form field ``name`` the ``value`` with the keyboard alone.

    Text fields: select all and type. Time fields (24-hour locale): type the digits. Radio
    groups: Tab into the group, Space, then arrows until ``value`` is checked. Selects: arrows
    until ``value`` is chosen. Checkboxes (value "on"/"off"): Space to toggle as needed.
    """
    selector = f"[name='{name}']"
    kind = page.evaluate("(s) => { const e = document.querySelector(s); "
                         "return e.tagName === 'INPUT' ? e.type : e.tagName.toLowerCase(); }",
                         selector)
    tab_to(page, selector)
    if kind == "radio":
        if not page.evaluate("document.activeElement.checked"):
            page.keyboard.press("Space")
        for _ in range(12):
            if page.evaluate("document.activeElement.value") == value:
                break
            page.keyboard.press("ArrowRight")
        assert page.evaluate(f"document.querySelector(\"[name='{name}']:checked\").value") == value
    elif kind == "checkbox":
        if page.evaluate("document.activeElement.checked") != (value == "on"):
            page.keyboard.press("Space")
    elif kind == "select":
        for _ in range(20):
            if page.evaluate("document.activeElement.value") == value:
                break
            page.keyboard.press("ArrowDown")
        assert page.evaluate("document.activeElement.value") == value
    elif kind == "time":
        page.keyboard.type(value.replace(":", ""))
        if page.evaluate("document.activeElement.value") != value:
            # A 12-hour field waits for its AM/PM segment (an afternoon hour sets it itself).
            page.keyboard.type("P" if int(value[:2]) >= 12 else "A")
        assert page.evaluate("document.activeElement.value") == value
    else:
        page.keyboard.press("Control+A")
        if value:
            page.keyboard.type(value)
        else:
            page.keyboard.press("Backspace")
        assert page.evaluate("document.activeElement.value") == value


def key_submit(page: Any, selector: str) -> None:
    """Tab to the button and press Enter; returns once the answer page has loaded."""
    tab_to(page, selector)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def keyboard_walk(page: Any, limit: int = 600) -> int:
    """Tab from the top through the whole page: every focusable element is reached (one radio per
    group, as browsers do) and shows a focus indicator. Returns how many stops it made."""
    # Focusing the body moves the sequential focus starting point to the top of the page.
    page.evaluate("""() => { const b = document.body; b.setAttribute('tabindex', '-1');
        b.focus(); b.removeAttribute('tabindex'); window.scrollTo(0, 0); }""")
    expected = page.evaluate("""(sel) => {
        const seen = new Set(); const out = [];
        for (const e of document.querySelectorAll(sel)) {
            const r = e.getBoundingClientRect(); const st = getComputedStyle(e);
            if (e.hidden || st.visibility === 'hidden' || st.display === 'none' ||
                (r.width === 0 && r.height === 0 && !e.classList.contains('skip-link'))) continue;
            if (e.type === 'radio') { if (seen.has(e.name)) continue; seen.add(e.name); }
            out.push(e.id || e.name || e.textContent.trim().slice(0, 40));
        }
        return out; }""", FOCUSABLE)
    reached: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        info = page.evaluate("""() => { const e = document.activeElement;
            if (!e || e === document.body) return null;
            const st = getComputedStyle(e);
            const ring = (st.outlineStyle !== 'none' && parseFloat(st.outlineWidth) > 0) ||
                         (st.boxShadow && st.boxShadow !== 'none');
            return {key: e.type === 'radio' ? e.name : (e.id || e.name ||
                    e.textContent.trim().slice(0, 40)), ring: ring}; }""")
        if info is None:
            break
        assert info["ring"], f"no visible focus indicator on {info['key']}"
        if reached and info["key"] == reached[0]:
            break
        if info["key"] not in reached:
            reached.append(info["key"])
    expected_keys = [page.evaluate(
        "(k) => { const e = document.getElementById(k) || document.getElementsByName(k)[0];"
        " return e && e.type === 'radio' ? e.name : k; }", k) for k in expected]
    missing = [k for k in expected_keys if k not in reached]
    assert not missing, f"not reachable by Tab: {missing}"
    return len(reached)
