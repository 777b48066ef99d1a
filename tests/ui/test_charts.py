"""The server-rendered SVG charts and the data read for them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from service.config import Settings
from service.render.charts import (
    BpPoint,
    bp_scale,
    last_session_bp,
    phq9_chart,
    phq9_points,
    session_bp_chart,
)
from service.render.html import smart_style_css
from service.render.session import SESSION_SYSTEM

SVG = "{http://www.w3.org/2000/svg}"
T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POINTS = [BpPoint("Before dose", T, 132, 84), BpPoint("~40 min", T, 186, 104),
          BpPoint("Discharge", T, 128, 80)]
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
LIMITS = {"elevated": (DEFAULTS.bp_systolic_elevated, DEFAULTS.bp_diastolic_elevated),
          "uncontrolled": (DEFAULTS.bp_systolic_uncontrolled, DEFAULTS.bp_diastolic_uncontrolled)}
"""The limits the pages pass: the deployment's settings (180/100 and 140/90 by default)."""


def test_bp_threshold_lines_sit_at_their_values_and_are_labelled() -> None:
    chart = session_bp_chart(POINTS, **LIMITS)
    root = ET.fromstring(str(chart.svg))
    scale = bp_scale(POINTS, [180, 140, 100, 90])
    lines = {line.get("data-value"): line for line in root.iter(f"{SVG}line")
             if "threshold" in (line.get("class") or "")}
    assert set(lines) == {"180", "140", "100", "90"}
    for value, line in lines.items():
        assert line.get("y1") == line.get("y2") == f"{scale.y(float(value)):g}"
        assert line.get("stroke-dasharray")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"180 SBP", "140 SBP", "100 DBP", "90 DBP"} <= set(texts)
    # higher pressure is higher on the page
    assert float(lines["180"].get("y1") or 0) < float(lines["140"].get("y1") or 0)
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    assert root.get("role") == "img"
    assert "186/104" in (root.find(f"{SVG}desc").text or "")  # type: ignore[union-attr]
    assert chart.rows[1][4] == "above the uncontrolled limit"


def test_bp_axis_widens_for_extreme_values() -> None:
    high = [BpPoint("Before dose", T, 250, 150)]
    scale = bp_scale(high, [180, 140, 100, 90])
    assert scale.hi >= 260 and scale.y(250) >= scale.top


def test_configured_thresholds_move_the_lines() -> None:
    chart = session_bp_chart(POINTS, elevated=(130, 85), uncontrolled=(170, 95))
    assert 'data-value="130"' in chart.svg and 'data-value="170"' in chart.svg
    assert 'data-value="140"' not in chart.svg


def test_phq9_chart_has_a_date_axis() -> None:
    points = [(datetime(2026, 9, 28, tzinfo=UTC), 22.0), (datetime(2026, 10, 5, tzinfo=UTC), 20.0),
              (datetime(2026, 11, 23, tzinfo=UTC), 9.0)]
    chart = phq9_chart(points)
    root = ET.fromstring(str(chart.svg))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"28 Sep 2026", "23 Nov 2026"} <= set(texts)
    assert "5 Oct 2026" not in texts  # a week after the first: too close to label legibly
    line = root.find(f"{SVG}polyline")
    assert line is not None
    xs = [float(p.split(",")[0]) for p in (line.get("points") or "").split()]
    # proportional to time: 7 days then 49 days
    assert abs((xs[1] - xs[0]) / (xs[2] - xs[1]) - 7 / 49) < 0.01
    assert chart.rows[-1] == ("23 Nov 2026", "9", "mild")


def test_chart_text_is_escaped() -> None:
    chart = session_bp_chart([BpPoint("<script>", None, 120, 80)], **LIMITS)
    assert "<script>" not in str(chart.svg) and "&lt;script&gt;" in str(chart.svg)
    ET.fromstring(str(chart.svg))


def _obs(code: str, when: str, **extra: object) -> dict[str, object]:
    return {"resourceType": "Observation", "status": "final", "effectiveDateTime": when,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, **extra}


def test_phq9_points_read_totals_only() -> None:
    found = phq9_points([
        _obs("44261-6", "2026-10-01T09:00:00Z", valueQuantity={"value": 12}),
        _obs("44261-6", "2026-09-01T09:00:00Z", valueInteger=18),
        _obs("44261-6", "2026-09-15T09:00:00Z", valueQuantity={"value": 40}),  # out of range
        {**_obs("44261-6", "2026-09-20T09:00:00Z", valueInteger=3), "status": "entered-in-error"},
        _obs("44249-1", "2026-09-20T09:00:00Z", valueInteger=3),
    ])
    assert [v for _, v in found] == [18.0, 12.0]


def _bp(session: str, step: str, when: str, s: int, d: int) -> dict[str, object]:
    comp = [{"code": {"coding": [{"system": "http://loinc.org", "code": c}]},
             "valueQuantity": {"value": v}} for c, v in (("8480-6", s), ("8462-4", d))]
    return _obs("85354-9", when, component=comp, identifier=[
        {"system": SESSION_SYSTEM, "value": f"Patient/p1/session/{session}/{step}/bp"}])


def test_last_session_bp_takes_the_latest_session_in_step_order() -> None:
    points = last_session_bp([
        _bp("old", "pre-dose", "2026-10-01T09:00:00Z", 150, 95),
        _bp("new", "discharge", "2026-11-01T11:00:00Z", 125, 79),
        _bp("new", "pre-dose", "2026-11-01T09:00:00Z", 130, 85),
        _obs("85354-9", "2026-11-20T09:00:00Z"),  # a clinic reading, not a session
    ])
    assert [(p.label, p.systolic, p.diastolic) for p in points] == [
        ("Before dose", 130, 85), ("Discharge", 125, 79)]


def test_smart_style_keeps_only_safe_values() -> None:
    css = smart_style_css({"color_background": "#fafafa", "color_highlight": "red;}body{x:y",
                           "font_family_body": "Arial, sans-serif", "dim_border_radius": "6px",
                           "unknown": "#000"})
    assert "--smart-background: #fafafa;" in css and "--smart-font: Arial, sans-serif;" in css
    assert "--smart-radius: 6px;" in css and "red" not in css and "unknown" not in css
    assert smart_style_css(["not", "an", "object"]) == ""
    assert re.fullmatch(r":root \{\n(  --smart-[a-z-]+: [^;{}]+;\n)+\}\n", css)
