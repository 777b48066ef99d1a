"""The antidepressant trials behind eligibility as a small server-rendered SVG timeline.

One row per antidepressant whose exposure has a length: a solid bar for a counted trial, a dashed
outline for one that is not counted (too short, before the episode), each labelled with its days.
A tick on each bar marks the shortest trial that counts (``trial_min_days``), and a dashed line
the start of the current episode. Like :mod:`service.render.charts`, the ``<svg role="img">`` is
named by its ``<title>`` and ``<desc>``, colour is never the only cue (solid against dashed, and
the words "counted" / the reason in the list the page prints beside it), and there is no script
(https://www.w3.org/WAI/tutorials/images/complex/). Exposures whose duration cannot be told have
no length to draw: the page lists them in words only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

from service.screening.model import Eligibility, Trial

__all__ = ["Timeline", "TrialRow", "trial_rows", "trials_timeline"]

WIDTH = 360
LABEL, RIGHT, TOP, ROW, AXIS = 100, 40, 24, 30, 26
"""Left label column, right margin (the days labels), top margin, row height, axis height."""
_COUNTED, _OTHER, _INK, _GRID, _EPISODE = "#1d5c7a", "#5b6470", "#1f2328", "#c9ced6", "#5b2a86"


@dataclass(frozen=True, slots=True)
class TrialRow:
    """One antidepressant exposure, as the page lists it beside the timeline."""

    ingredient: str
    drug_class: str
    start: date
    days: int
    basis: str
    evidence: tuple[str, ...]
    counted: bool
    reason: str
    """Why it is not counted ("" for a counted trial)."""

    @property
    def drawn(self) -> bool:
        return self.days > 0 and self.reason != "duration cannot be told"


@dataclass(frozen=True, slots=True)
class Timeline:
    svg: Markup
    desc: str


def trial_rows(e: Eligibility) -> list[TrialRow]:
    """Counted trials first (by start), then the exposures that are not counted."""

    def row(t: Trial, reason: str) -> TrialRow:
        return TrialRow(t.ingredient, t.drug_class, t.start, t.days, t.basis, t.evidence,
                        not reason, reason)

    counted = sorted((row(t, "") for t in e.trials), key=lambda r: r.start)
    others = sorted((row(t, why) for t, why in e.other_exposures), key=lambda r: r.start)
    return [*counted, *others]


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 13,
          fill: str = _INK) -> str:
    return (f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{fill}">{escape(text)}</text>')


def _label(when: date) -> str:
    return f"{when:%b %Y}"


def trials_timeline(e: Eligibility, as_of: date, min_days: int, *,
                    chart_id: str = "trials-timeline") -> Timeline | None:
    """The timeline of ``e``'s exposures up to ``as_of``; None when none has a length."""
    rows = [r for r in trial_rows(e) if r.drawn]
    if not rows:
        return None
    first = min([r.start for r in rows] + ([e.episode_start] if e.episode_start else []))
    last = max([as_of] + [r.start + timedelta(days=r.days) for r in rows])
    span = max((last - first).days, 1)
    left, right = LABEL, WIDTH - RIGHT
    height = TOP + ROW * len(rows) + AXIS

    def x(when: date) -> float:
        return round(left + (when - first).days / span * (right - left), 1)

    counted = [r for r in rows if r.counted]
    desc = (f"{len(counted)} counted antidepressant trial(s) of at least {min_days} days"
            + (f" in the episode from {e.episode_start.isoformat()}" if e.episode_start else "")
            + ": " + ("; ".join(f"{r.ingredient} ({r.drug_class}) from {r.start.isoformat()}, "
                                f"{r.days} days" for r in counted) or "none")
            + "." + "".join(f" Not counted: {r.ingredient}, {r.days} days, {r.reason}."
                            for r in rows if not r.counted))
    out = [
        f'<svg class="chart trial-timeline" id="{chart_id}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">Antidepressant trials in the record</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    bottom = TOP + ROW * len(rows)
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{_INK}"/>')
    for when, anchor in ((first, "start"), (last, "end")):
        out.append(f'<line x1="{x(when):g}" y1="{bottom}" x2="{x(when):g}" y2="{bottom + 4}" '
                   f'stroke="{_INK}"/>')
        out.append(_text(x(when), bottom + 16, _label(when), anchor=anchor, size=12))
    if e.episode_start is not None:
        ex = x(e.episode_start)
        out.append(f'<line class="episode-start" x1="{ex:g}" y1="{TOP - 6}" x2="{ex:g}" '
                   f'y2="{bottom}" stroke="{_EPISODE}" stroke-width="1.4" '
                   'stroke-dasharray="4 3"/>')
        out.append(_text(min(ex, right - 2), TOP - 10, f"episode from {_label(e.episode_start)}",
                         anchor="middle" if left + 50 < ex < right - 50 else
                         ("start" if ex <= left + 50 else "end"), size=12, fill=_EPISODE))
    for i, r in enumerate(rows):
        top = TOP + ROW * i + 6
        bar_h = ROW - 12
        x0, x1 = x(r.start), x(r.start + timedelta(days=r.days))
        width = max(x1 - x0, 2)
        out.append(_text(left - 6, top + bar_h - 3, r.ingredient, anchor="end"))
        out.append(f'<line x1="{left}" y1="{top + bar_h / 2:g}" x2="{right}" '
                   f'y2="{top + bar_h / 2:g}" stroke="{_GRID}" stroke-width="0.6"/>')
        if r.counted:
            out.append(f'<rect class="trial trial-counted" x="{x0:g}" y="{top}" '
                       f'width="{width:g}" height="{bar_h}" rx="2" fill="{_COUNTED}"/>')
        else:
            out.append(f'<rect class="trial trial-not-counted" x="{x0:g}" y="{top}" '
                       f'width="{width:g}" height="{bar_h}" rx="2" fill="#ffffff" '
                       f'stroke="{_OTHER}" stroke-width="1.4" stroke-dasharray="3 2"/>')
        mark = x(r.start + timedelta(days=min_days))
        out.append(f'<line class="min-days" x1="{mark:g}" y1="{top - 3}" x2="{mark:g}" '
                   f'y2="{top + bar_h + 3}" stroke="{_INK}" stroke-width="1.2"/>')
        out.append(_text(min(max(x1, mark) + 4, right + 2), top + bar_h - 3, f"{r.days} d",
                         size=12, fill=_COUNTED if r.counted else _OTHER))
    out.append("</svg>")
    # Safe: every piece of text went through html.escape; the rest is numbers and constants.
    return Timeline(Markup("\n".join(out)), desc)  # noqa: S704
