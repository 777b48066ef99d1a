"""The screening page shows both verdicts side by side, the findings marked with their products,
and eligibility beside the verdicts with the trials as an accessible SVG timeline (demo mode,
TestClient; the browser test takes the screenshots)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.render.timeline import trial_rows, trials_timeline
from service.screening.model import Eligibility, Trial
from tests.ui.conftest import demo_settings, open_demo


def _page(client: TestClient, patient: str) -> str:
    resp = client.get("/app", params={"ctx": open_demo(client, patient)})
    assert resp.status_code == 200
    return resp.text


def _section(html: str, start: str, end: str = "</section>") -> str:
    return html.split(start, 1)[1].split(end, 1)[0]


def test_both_verdicts_side_by_side_in_colour_word_and_symbol(demo_client: TestClient) -> None:
    page = _page(demo_client, "demo-trd")
    ketamine = _section(page, '<section class="verdict verdict-needs-review" id="verdict-ketamine"')
    assert '<p class="verdict-product">ketamine</p>' in ketamine
    assert '<span class="verdict-symbol" aria-hidden="true">!</span>' in ketamine
    assert '<span class="verdict-word">Needs review</span>' in ketamine
    assert "Verdict for ketamine: " in ketamine
    esketamine = _section(page, '<section class="verdict verdict-suitable" id="verdict-esketamine"')
    assert '<span class="verdict-symbol" aria-hidden="true">\u2714</span>' in esketamine
    assert '<span class="verdict-word">Suitable</span>' in esketamine
    assert "<span id='verdict'>Needs review</span>" in page  # the stricter, in words
    main = page.split('<main id="main">', 1)[1]
    assert main.index('id="verdict-ketamine"') < main.index('id="verdict-esketamine"') \
        < main.index('id="eligibility"') < main.index("Precautions (1)")
    assert ("Blood pressure limits in force: uncontrolled above 180/100 mmHg, elevated above "
            "140/90 mmHg") in page


def test_findings_name_the_products_they_concern(demo_client: TestClient) -> None:
    page = _page(demo_client, "demo-trd")
    glaucoma = _section(page, "<h3>Glaucoma, raised intraocular pressure", "</li>")
    assert ('<p class="finding-products">For <span class="product-tag product-ketamine">'
            "ketamine</span> only</p>") in glaucoma
    info = _section(page, "<h3>Glaucoma or raised intraocular pressure (information", "</li>")
    assert ('<span class="product-tag product-esketamine">esketamine (Spravato)</span> only'
            in info)
    both = _page(demo_client, "demo-contraindicated")
    aneurysm = _section(both, "<h3>Aneurysmal vascular disease", "</li>")
    assert ('For <span class="product-tag product-ketamine">ketamine</span> and '
            '<span class="product-tag product-esketamine">esketamine (Spravato)</span></p>'
            in aneurysm)


def test_trd_documented_with_its_timeline(demo_client: TestClient) -> None:
    page = _page(demo_client, "demo-trd")
    section = _section(page, '<section class="eligibility eligibility-trd-documented"')
    assert '<span id="eligibility-status">Treatment-resistant depression documented</span>' \
        in section
    assert "Dose adequacy was not assessed." in section
    svg = _section(section, '<svg class="chart trial-timeline" id="trials-timeline" role="img"',
                   "</svg>")
    assert 'aria-labelledby="trials-timeline-title trials-timeline-desc"' in svg
    assert '<title id="trials-timeline-title">Antidepressant trials in the record</title>' in svg
    assert ("2 counted antidepressant trial(s) of at least 42 days in the episode from "
            "2025-08-15: sertraline (SSRI) from 2025-09-01, 91 days; venlafaxine (SNRI) from "
            "2026-01-12, 90 days.") in svg
    assert svg.count('class="trial trial-counted"') == 2
    assert "trial-not-counted" not in svg and svg.count('class="min-days"') == 2
    assert ("<strong>sertraline</strong> (SSRI) from 2025-09-01, 91 days (period):" in section)
    assert "(supply x repeats)" in section and "MedicationRequest/demo-trd-m2" in section
    assert "<dt>Classes</dt><dd>2 among the counted trials" in section
    assert "<dt>Missing</dt>" not in section
    assert "style=" not in page and "<script>" not in page


def test_single_short_trial_says_what_is_missing(demo_client: TestClient) -> None:
    page = _page(demo_client, "demo-single-trial")
    assert page.count('class="verdict verdict-suitable"') == 2  # eligibility changes neither
    section = _section(page, '<section class="eligibility eligibility-not-documented"')
    assert "Treatment resistance not documented in the record" in section
    assert "not eligible" not in section.lower()
    assert "not counted, too short (28 days, under 42)" in section
    assert re.search(r'<rect class="trial trial-not-counted"[^>]*stroke-dasharray', section)
    assert "trial-counted" not in _section(section, "<svg", "</svg>")
    assert ("<li>fewer than two trials: 0 of at least 42 days (none); too short: escitalopram "
            "28 days</li>") in section
    assert "Dose adequacy was not assessed." in section


def test_no_antidepressant_no_timeline(demo_client: TestClient) -> None:
    section = _section(_page(demo_client, "demo-contraindicated"), 'id="eligibility"')
    assert "<svg" not in section and "No antidepressant found in the record." in section


def _trial(name: str, start: str, days: int) -> Trial:
    return Trial(name, "SSRI", date.fromisoformat(start), days, (f"MedicationStatement/{name}",),
                 "period")


def _eligibility(trials: tuple[Trial, ...], others: tuple[tuple[Trial, str], ...] = (),
                 episode: str | None = "2026-01-01") -> Eligibility:
    return Eligibility("not-documented", ("Condition/1",), trials, 1, (), "", "src",
                       date.fromisoformat(episode) if episode else None, others)


def test_bars_sit_at_their_dates_and_lengths() -> None:
    e = _eligibility((_trial("sertraline", "2026-01-01", 100),),
                     ((_trial("fluoxetine", "2026-05-01", 20), "too short (20 days, under 42)"),))
    timeline = trials_timeline(e, date(2026, 7, 20), 42)
    assert timeline is not None
    bars = re.findall(r'<rect class="trial (trial-[a-z-]+)" x="([\d.]+)" y="[\d.]+" '
                      r'width="([\d.]+)"', timeline.svg)
    # 200 days from 2026-01-01 to 2026-07-20 over the plot's 220 units (100 to 320).
    assert bars == [("trial-counted", "100", "110"), ("trial-not-counted", "232", "22")]
    assert "Not counted: fluoxetine, 20 days, too short (20 days, under 42)." in timeline.desc


def test_nothing_drawable_gives_no_timeline_and_text_is_escaped() -> None:
    unknown = _eligibility((), ((_trial("sertraline", "2026-01-01", 0),
                                 "duration cannot be told"),))
    assert trials_timeline(unknown, date(2026, 7, 1), 42) is None
    assert [r.drawn for r in trial_rows(unknown)] == [False]
    hostile = _eligibility((_trial("<b>x</b>", "2026-01-01", 60),), episode=None)
    timeline = trials_timeline(hostile, date(2026, 7, 1), 42)
    assert timeline is not None and "<b>" not in timeline.svg and "&lt;b&gt;" in timeline.svg


def test_ruleset_v1_page_has_both_verdicts_and_no_eligibility(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETAMINE_DEMO", "1")
    with TestClient(create_app(demo_settings(ruleset="v1"))) as client:
        page = _page(client, "demo-trd")
    assert 'id="verdict-ketamine"' in page and 'id="verdict-esketamine"' in page
    assert 'id="eligibility"' not in page and "ruleset v1" in page
