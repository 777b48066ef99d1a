"""Server-rendered SVG charts for the clinician's pages (no script, no CDN), and their data.

Each chart is an inline ``<svg role="img">`` named by its ``<title>`` and ``<desc>``; the page also
prints the same numbers as a small table for screen readers (``Chart.rows``), following WAI's
"complex images" pattern (https://www.w3.org/WAI/tutorials/images/complex/). Colour is never the
only cue: series differ by marker shape and dash, threshold lines carry their value as text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

from service.fhir.codesystems import canonical
from service.render.phq9 import Outcome
from service.render.session import SESSION_SYSTEM
from service.render.session_input import VitalsInput
from service.render.session_items import VITALS_STEPS

__all__ = [
    "PHQ9_BANDS",
    "PHQ9_TOTAL",
    "BpPoint",
    "Chart",
    "Scale",
    "bp_scale",
    "first_session_start",
    "last_session_bp",
    "phq9_chart",
    "phq9_points",
    "session_bp_chart",
    "session_bp_points",
]

WIDTH, HEIGHT = 400, 240
LEFT, RIGHT, TOP, BOTTOM = 40, 70, 14, 34
"""Plot margins in viewBox units; the right margin holds the threshold labels."""

PHQ9_BANDS = ((5, "mild"), (10, "moderate"), (15, "moderately severe"), (20, "severe"))
"""PHQ-9 total severity cut-offs (Kroenke, Spitzer, Williams 2001)."""

_SYS, _DIA = "#0b4f8a", "#5b2a86"
_UNCONTROLLED, _ELEVATED, _GRID, _INK = "#a4001d", "#7a4b00", "#c9ced6", "#1f2328"


@dataclass(frozen=True, slots=True)
class Scale:
    """Maps a value in ``[lo, hi]`` to a y coordinate of the plot (top is ``hi``)."""

    lo: float
    hi: float
    top: float = TOP
    bottom: float = HEIGHT - BOTTOM

    def y(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return round(self.bottom - (value - self.lo) / span * (self.bottom - self.top), 1)


@dataclass(frozen=True, slots=True)
class BpPoint:
    label: str
    """``Before dose``, ``~40 min``, ``Discharge``."""
    at: datetime | None
    systolic: float | None
    diastolic: float | None


@dataclass(slots=True)
class Chart:
    svg: Markup
    caption: str
    headers: tuple[str, ...]
    rows: Sequence[tuple[str, ...]] = ()


LOINC = "http://loinc.org"
PHQ9_TOTAL = "44261-6"
BP_PANELS = frozenset({"85354-9", "55284-4"})
COUNTED_STATUS = frozenset({"final", "amended", "corrected", "preliminary"})


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _svg(parts: Sequence[str]) -> Markup:
    # Safe: every piece of text went through html.escape in _open / _text; the rest is numbers.
    return Markup("\n".join(parts))  # noqa: S704


def _open(chart_id: str, title: str, desc: str) -> list[str]:
    return [
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def _text(x: float, y: float, text: str, *, anchor: str = "start", fill: str = _INK,
          size: int = 12, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{fill}"{klass}>{escape(text)}</text>')


def _y_axis(scale: Scale, ticks: Sequence[float]) -> list[str]:
    right = WIDTH - RIGHT
    out = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{scale.bottom:g}" stroke="{_INK}"/>']
    for tick in ticks:
        y = scale.y(tick)
        out.append(f'<line x1="{LEFT}" y1="{y:g}" x2="{right}" y2="{y:g}" stroke="{_GRID}" '
                   'stroke-width="0.6"/>')
        out.append(_text(LEFT - 5, y + 4, _num(tick), anchor="end", size=11))
    out.append(f'<line x1="{LEFT}" y1="{scale.bottom:g}" x2="{right}" y2="{scale.bottom:g}" '
               f'stroke="{_INK}"/>')
    return out


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return (f'<rect x="{x - 4:g}" y="{y - 4:g}" width="8" height="8" fill="{colour}" '
                'stroke="#fff" stroke-width="1"/>')
    return f'<circle cx="{x:g}" cy="{y:g}" r="4.5" fill="{colour}" stroke="#fff" stroke-width="1"/>'


def _series(points: Sequence[tuple[float, float]], colour: str, shape: str, dash: str,
            css: str) -> list[str]:
    if not points:
        return []
    path = " ".join(f"{x:g},{y:g}" for x, y in points)
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    out = [f'<polyline class="{css}" points="{path}" fill="none" stroke="{colour}" '
           f'stroke-width="2.2"{dash_attr}/>']
    out += [_marker(shape, x, y, colour) for x, y in points]
    return out


def _date(value: datetime) -> str:
    return f"{value.day} {value:%b %Y}"


def _outcome_lines(outcome: Outcome, scale: Scale) -> list[str]:
    """Baseline, response and remission as labelled dashed lines (labels inside the plot)."""
    out: list[str] = []
    right = WIDTH - RIGHT
    # (kind, value, label, colour, label x, anchor, label dy): labels alternate sides and sit
    # below the remission line, so that close lines keep readable labels.
    lines = (("baseline", outcome.baseline[1], f"baseline {_num(outcome.baseline[1])}", _INK,
              LEFT + 4, "start", -3),
             ("response", outcome.response_line,
              f"response \u2264 {_num(outcome.response_line)}", _ELEVATED, right - 4, "end", -3),
             ("remission", outcome.remission_below,
              f"remission < {_num(outcome.remission_below)}", "#1e6b34", LEFT + 4, "start", 10))
    for kind, value, label, colour, x, anchor, dy in lines:
        y = scale.y(value)
        out.append(f'<line class="outcome outcome-{kind}" data-value="{_num(value)}" '
                   f'x1="{LEFT}" y1="{y:g}" x2="{right}" y2="{y:g}" stroke="{colour}" '
                   'stroke-width="1.2" stroke-dasharray="3 3"/>')
        out.append(_text(x, y + dy, label, anchor=anchor, fill=colour, size=9,
                         cls="outcome-label"))
    return out


def phq9_chart(points: Sequence[tuple[datetime, float]], *, chart_id: str = "phq9-chart",
               outcome: Outcome | None = None) -> Chart:
    """PHQ-9 totals (LOINC 44261-6) over time, on a date axis, with the severity bands; with an
    ``outcome``, its baseline, response and remission lines too."""
    ordered = sorted(points, key=lambda p: p[0])
    rows = [(_date(when), _num(score), _band(score)) for when, score in ordered]
    if ordered:
        first, last = ordered[0], ordered[-1]
        desc = (f"{len(ordered)} PHQ-9 totals from {_date(first[0])} ({_num(first[1])}) to "
                f"{_date(last[0])} ({_num(last[1])}). Scale 0 to 27; higher is more severe.")
    else:
        desc = "No PHQ-9 totals recorded."
    if outcome is not None:
        desc += " " + outcome.words()
    scale = Scale(0, 27)
    out = _open(chart_id, "PHQ-9 total score across treatment", desc)
    out += _y_axis(scale, [0, *(b for b, _ in PHQ9_BANDS), 27])
    if outcome is not None:
        out += _outcome_lines(outcome, scale)
    for cut, name in PHQ9_BANDS:
        short = name.replace("moderately severe", "mod-severe")
        out.append(_text(WIDTH - RIGHT + 4, scale.y(cut) + 4, short, size=10))
    plot_left, plot_right = LEFT + 16, WIDTH - RIGHT - 16
    xy: list[tuple[float, float]] = []
    if ordered:
        start, end = ordered[0][0].timestamp(), ordered[-1][0].timestamp()
        span = end - start

        def x_of(when: datetime) -> float:
            if span <= 0:
                return round((plot_left + plot_right) / 2, 1)
            return round(plot_left + (when.timestamp() - start) / span * (plot_right - plot_left),
                         1)

        xy = [(x_of(when), scale.y(score)) for when, score in ordered]
        for (x, y), (_, score) in zip(xy, ordered, strict=True):
            out.append(_text(x, y - 8, _num(score), anchor="middle", size=11, cls="point-label"))
        for i in _date_ticks([x for x, _ in xy]):
            when, x = ordered[i][0], xy[i][0]
            out.append(f'<line x1="{x:g}" y1="{scale.bottom:g}" x2="{x:g}" '
                       f'y2="{scale.bottom + 4:g}" stroke="{_INK}"/>')
            out.append(_text(x, scale.bottom + 17, _date(when), anchor="middle", size=10))
    else:
        out.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT / 2, "No PHQ-9 scores recorded",
                         anchor="middle"))
    out += _series(xy, _SYS, "circle", "", "series-phq9")
    out.append("</svg>")
    return Chart(_svg(out), "PHQ-9 totals", ("Date", "PHQ-9 total", "Severity"),
                 rows)


def _band(score: float) -> str:
    name = "minimal"
    for cut, label in PHQ9_BANDS:
        if score >= cut:
            name = label
    return name


def _date_ticks(xs: Sequence[float], gap: float = 76) -> list[int]:
    """Indexes of the dates to label: the first and the last, and others at least ``gap`` apart
    (a label is about 60 units wide at font size 10)."""
    kept = [0]
    for i in range(1, len(xs)):
        if xs[i] - xs[kept[-1]] >= gap:
            kept.append(i)
    last = len(xs) - 1
    if kept[-1] != last:
        if len(kept) > 1 and xs[last] - xs[kept[-1]] < gap:
            kept.pop()
        if xs[last] - xs[kept[-1]] >= gap or not kept:
            kept.append(last)
    return kept


def bp_scale(points: Sequence[BpPoint], thresholds: Sequence[float]) -> Scale:
    """mmHg axis from 40 to 200 at least, widened in steps of 20 to fit every value."""
    values = [v for p in points for v in (p.systolic, p.diastolic) if v is not None]
    values += list(thresholds)
    lo = min(40.0, math.floor((min(values) - 10) / 20) * 20)
    hi = max(200.0, math.ceil((max(values) + 10) / 20) * 20)
    return Scale(lo, hi)


def session_bp_chart(points: Sequence[BpPoint], *, elevated: tuple[float, float],
                     uncontrolled: tuple[float, float], chart_id: str = "bp-chart") -> Chart:
    """Blood pressure before dosing, at about 40 minutes and at discharge, against the limits.

    Dashed lines: ``uncontrolled`` (CH-KETAMINE) and ``elevated`` (SPRAVATO-PI 5.6), as the
    deployment configures them (the settings hold the one copy), each labelled with its value.
    """
    limits = [(uncontrolled[0], "systolic", "uncontrolled", _UNCONTROLLED),
              (elevated[0], "systolic", "elevated", _ELEVATED),
              (uncontrolled[1], "diastolic", "uncontrolled", _UNCONTROLLED),
              (elevated[1], "diastolic", "elevated", _ELEVATED)]
    scale = bp_scale(points, [v for v, *_ in limits])
    step = 20 if scale.hi - scale.lo <= 200 else 40
    ticks = [scale.lo + step * i for i in range(int((scale.hi - scale.lo) // step) + 1)]
    readings = "; ".join(
        f"{p.label} {_num(p.systolic) if p.systolic is not None else '?'}/"
        f"{_num(p.diastolic) if p.diastolic is not None else '?'}" for p in points)
    desc = (f"Blood pressure in mmHg: {readings or 'no readings'}. Dashed limits: "
            f"{_num(elevated[0])}/{_num(elevated[1])} elevated, "
            f"{_num(uncontrolled[0])}/{_num(uncontrolled[1])} uncontrolled.")
    out = _open(chart_id, "Blood pressure during the session", desc)
    out += _y_axis(scale, ticks)
    right = WIDTH - RIGHT
    for value, which, kind, colour in limits:
        y = scale.y(value)
        out.append(f'<line class="threshold threshold-{kind}" data-value="{_num(value)}" '
                   f'data-kind="{kind} {which}" x1="{LEFT}" y1="{y:g}" x2="{right}" y2="{y:g}" '
                   f'stroke="{colour}" stroke-width="1.4" stroke-dasharray="6 4"/>')
        short = "SBP" if which == "systolic" else "DBP"
        out.append(_text(right + 4, y + 4, f"{_num(value)} {short}", fill=colour, size=10))
    n = max(len(points), 1)
    slot = (right - LEFT) / n
    sys_xy: list[tuple[float, float]] = []
    dia_xy: list[tuple[float, float]] = []
    for i, point in enumerate(points):
        x = round(LEFT + slot * (i + 0.5), 1)
        out.append(_text(x, scale.bottom + 17, point.label, anchor="middle", size=11))
        if point.systolic is not None:
            sys_xy.append((x, scale.y(point.systolic)))
            out.append(_text(x, scale.y(point.systolic) - 8, _num(point.systolic),
                             anchor="middle", size=11, fill=_SYS, cls="point-label"))
        if point.diastolic is not None:
            dia_xy.append((x, scale.y(point.diastolic)))
            out.append(_text(x, scale.y(point.diastolic) + 18, _num(point.diastolic),
                             anchor="middle", size=11, fill=_DIA, cls="point-label"))
    out += _series(sys_xy, _SYS, "circle", "", "series-systolic")
    out += _series(dia_xy, _DIA, "square", "2 3", "series-diastolic")
    out.append("</svg>")
    rows = [(p.label, p.at.strftime("%H:%M") if p.at else "",
             _num(p.systolic) if p.systolic is not None else "",
             _num(p.diastolic) if p.diastolic is not None else "", _bp_note(p, elevated,
                                                                           uncontrolled))
            for p in points]
    return Chart(_svg(out), "Blood pressure readings (mmHg)",
                 ("Reading", "Time", "Systolic", "Diastolic", "Against the limits"), rows)


def _bp_note(p: BpPoint, elevated: tuple[float, float], uncontrolled: tuple[float, float]) -> str:
    s, d = p.systolic or 0, p.diastolic or 0
    if s > uncontrolled[0] or d > uncontrolled[1]:
        return "above the uncontrolled limit"
    if s > elevated[0] or d > elevated[1]:
        return "above the elevated limit"
    return "within limits"


# -- The data behind the charts, from Observation JSON -------------------------------------


def _codes(concept: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    return {(str(c.get("system")), str(c.get("code")))
            for c in (concept or {}).get("coding") or [] if isinstance(c, dict)}


def _when(obs: Mapping[str, Any]) -> datetime | None:
    raw = obs.get("effectiveDateTime") or (obs.get("effectivePeriod") or {}).get("start") \
        or obs.get("issued")
    if not isinstance(raw, str):
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


def _counted(obs: Mapping[str, Any]) -> bool:
    return obs.get("resourceType") == "Observation" and obs.get("status") in COUNTED_STATUS


def phq9_points(observations: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, float]]:
    """(when, total) of each PHQ-9 total score (LOINC 44261-6), oldest first."""
    points: list[tuple[datetime, float]] = []
    for obs in observations:
        if not _counted(obs) or (LOINC, PHQ9_TOTAL) not in _codes(obs.get("code")):
            continue
        when = _when(obs)
        value = (obs.get("valueQuantity") or {}).get("value", obs.get("valueInteger"))
        if when is not None and isinstance(value, int | float) and 0 <= value <= 27:
            points.append((when, float(value)))
    return sorted(points, key=lambda p: p[0])


def _panel(obs: Mapping[str, Any]) -> tuple[float | None, float | None]:
    found: dict[str, float] = {}
    for comp in obs.get("component") or []:
        value = (comp.get("valueQuantity") or {}).get("value")
        for system, code in _codes(comp.get("code")):
            if system == LOINC and code in ("8480-6", "8462-4") and isinstance(value, int | float):
                found[code] = float(value)
    return found.get("8480-6"), found.get("8462-4")


def last_session_bp(observations: Iterable[Mapping[str, Any]]) -> list[BpPoint]:
    """The BP panels of the latest treatment session written by this app (by identifier).

    Session identifiers read ``Patient/<id>/session/<session>/<step>/bp`` (service.render.session).
    """
    sessions: dict[str, dict[str, tuple[datetime | None, float | None, float | None]]] = {}
    system = canonical(SESSION_SYSTEM)
    for obs in observations:
        loinc = {c for s, c in _codes(obs.get("code")) if s == LOINC}
        if not _counted(obs) or not loinc & BP_PANELS:
            continue
        for ident in obs.get("identifier") or []:
            parts = str(ident.get("value", "")).split("/")
            if ident.get("system") != system or len(parts) != 6 or parts[-1] != "bp":
                continue
            sessions.setdefault(parts[3], {})[parts[4]] = (_when(obs), *_panel(obs))
    if not sessions:
        return []

    def latest(steps: Mapping[str, tuple[datetime | None, float | None, float | None]]) -> str:
        stamps = [when.isoformat() for when, _, _ in steps.values() if when is not None]
        return max(stamps, default="")

    steps = max(sessions.values(), key=latest)
    return [BpPoint(step.chart_label, *steps[step.key]) for step in VITALS_STEPS
            if step.key in steps]


def first_session_start(observations: Iterable[Mapping[str, Any]]) -> datetime | None:
    """When this app's first recorded session began (its earliest session BP panel): the PHQ-9
    baseline is the last total before it."""
    system = canonical(SESSION_SYSTEM)
    times = [_when(obs) for obs in observations if _counted(obs)
             and any(i.get("system") == system for i in obs.get("identifier") or [])]
    return min((t for t in times if t is not None), default=None)


def session_bp_points(pre: VitalsInput, at_40: VitalsInput,
                      discharge: VitalsInput) -> list[BpPoint]:
    """The three readings of a :class:`~service.render.session_input.SessionInput`, for the
    chart."""
    return [BpPoint(step.chart_label, v.at, v.systolic, v.diastolic)
            for step, v in zip(VITALS_STEPS, (pre, at_40, discharge), strict=True)]
