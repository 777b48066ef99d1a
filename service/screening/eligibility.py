"""Is the patient a candidate? Treatment-resistant depression from the record (eligibility).

REFERENCE, Indication (eligibility): ``trd-documented`` needs an active depression diagnosis and
at least 2 distinct antidepressant ingredients, each with at least 42 days of exposure starting
within the current episode (on or after the diagnosis's onset, else its recordedDate; with
neither, within a look-back); ``mdsi-pathway`` an active depression diagnosis, suicidal ideation or
behaviour recorded and a current oral antidepressant; otherwise ``not-documented``, saying what is
missing. Exposure per ingredient is the union of intervals from every record of every status
(effective periods; authoredOn + supply x (1 + repeats); repeated orders from the first to the
last plus its supply; dispense days supply; an active record with a start and no end runs to the
evaluation time). Dose adequacy is not assessed. This answer never changes the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from service.screening.classified import Classified
from service.screening.interactions import counts_now
from service.screening.matching import Matcher
from service.screening.model import ConditionFact, Eligibility, MedicationFact, Trial
from service.screening.policy import BloodPressurePolicy

__all__ = ["assess"]

_EVIDENCE_TYPES = ("Condition", "MedicationStatement", "MedicationRequest", "MedicationDispense")
"""The record types eligibility's evidence comes from (the diagnosis and the trials)."""
_ORDER = ("period", "supply x repeats", "repeated orders", "dispense days supply", "ongoing")


@dataclass(slots=True)
class _Exposure:
    drug_class: str
    intervals: list[tuple[date, date, str]] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    requests: list[tuple[date, date | None, MedicationFact]] = field(default_factory=list)


def _end(med: MedicationFact, start: date, as_of: datetime, active: list[str]) -> tuple[
        date | None, str]:
    """When one record's exposure ends, and how that was told; None when it cannot be told."""
    if med.kind == "MedicationStatement" and med.period_end is not None:
        return med.period_end.date(), "period"
    if med.supply_days is not None:
        if med.kind == "MedicationDispense":
            return start + timedelta(days=med.supply_days), "dispense days supply"
        return start + timedelta(days=med.supply_days * (1 + (med.repeats or 0))), \
            "supply x repeats"
    if med.status in active:
        return as_of.date(), "ongoing"
    return None, ""


def _union_days(intervals: list[tuple[date, date, str]]) -> int:
    total = 0
    current: tuple[date, date] | None = None
    for start, end, _ in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                total += (current[1] - current[0]).days
            current = (start, end)
        elif end > current[1]:
            current = (current[0], end)
    if current is not None:
        total += (current[1] - current[0]).days
    return total


class _Assessment:
    def __init__(self, classified: Classified, matcher: Matcher,
                 policy: BloodPressurePolicy) -> None:
        rules = matcher.ruleset.eligibility
        if rules is None:  # pragma: no cover - evaluate() asks only rulesets that have it
            raise ValueError(f"ruleset {matcher.ruleset.version} has no eligibility rules")
        self.rules = rules
        self.c, self.as_of, self.m = classified, classified.as_of, matcher
        self.statuses = matcher.terminology.statuses
        self.lookback = policy.eligibility_lookback_days or rules.lookback_days

    def active(self, which: str) -> list[ConditionFact]:
        """Depression or suicidality records that count as State records at the evaluation time."""
        state = (None, *self.statuses.condition_state_clinical)
        return [c for c in (self.c.depression if which == "depression" else self.c.suicidality)
                if (c.abated_at > self.as_of if c.abated_at else c.clinical_status in state)]

    def exposures(self) -> dict[str, _Exposure]:
        found: dict[str, _Exposure] = {}
        active = self.statuses.medication_active
        skip = set(self.statuses.eligibility_excluded)
        for record in self.c.antidepressants:
            med = record.fact
            if med.status in skip or (
                    med.kind == "MedicationRequest"
                    and med.intent in self.statuses.medication_request_intent_excluded):
                continue
            for hit in record.antidepressants:
                exp = found.setdefault(hit.ingredient, _Exposure(hit.drug_class))
                exp.evidence.append(med.ref)
                if med.start is None:
                    exp.unknown.append(med.ref)
                    continue
                start = med.start.date()
                end, basis = _end(med, start, self.as_of, active)
                if med.kind == "MedicationRequest":
                    exp.requests.append((start, end, med))
                if end is None:
                    exp.unknown.append(med.ref)
                else:
                    exp.intervals.append((start, min(end, self.as_of.date()), basis))
        for exp in found.values():
            self._repeated_orders(exp)
        return found

    def _repeated_orders(self, exp: _Exposure) -> None:
        if len(exp.requests) < 2:
            return
        ordered = sorted(exp.requests, key=lambda r: (r[0], r[2].ref))
        first, (last_start, last_end, _last) = ordered[0][0], ordered[-1]
        end = min(last_end or last_start, self.as_of.date())
        exp.intervals.append((first, end, "repeated orders"))
        covered = {m.ref for _, _, m in ordered}
        exp.unknown = [ref for ref in exp.unknown if ref not in covered]

    def run(self) -> Eligibility:
        rules = self.rules
        diagnosis = self.active("depression")
        suicidality = self.active("suicidality")
        onsets = [when for c in diagnosis if (when := c.onset or c.recorded) is not None]
        if onsets:
            episode = min(onsets).date()
        else:
            episode = (self.as_of - timedelta(days=self.lookback)).date()
        trials: list[Trial] = []
        others: list[tuple[Trial, str]] = []
        for ingredient, exp in sorted(self.exposures().items()):
            inside = [i for i in exp.intervals if i[0] >= episode]
            before = [i for i in exp.intervals if i[0] < episode]
            evidence = tuple(dict.fromkeys(exp.evidence))
            if inside:
                days = _union_days(inside)
                bases = {b for _, _, b in inside}
                trial = Trial(ingredient, exp.drug_class, min(i[0] for i in inside), days,
                              evidence, ", ".join(b for b in _ORDER if b in bases))
                if days >= rules.trial_min_days:
                    trials.append(trial)
                else:
                    others.append((trial, f"too short ({days} days, under "
                                          f"{rules.trial_min_days})"))
            elif before:
                bases = {b for _, _, b in before}
                others.append((Trial(ingredient, exp.drug_class, min(i[0] for i in before),
                                     _union_days(before), evidence,
                                     ", ".join(b for b in _ORDER if b in bases)),
                               "before the episode"))
            elif exp.unknown:
                others.append((Trial(ingredient, exp.drug_class, episode, 0, evidence, ""),
                               "duration cannot be told"))
        current = [r.fact.ref for r in self.c.antidepressants
                   if r.oral and counts_now(r.fact, self.as_of, self.m)]
        classes = len({t.drug_class for t in trials})
        if diagnosis and len(trials) >= rules.min_trials:
            status = "trd-documented"
        elif diagnosis and suicidality and current:
            status = "mdsi-pathway"
        else:
            status = "not-documented"
        missing = self.missing(bool(diagnosis), trials, others)
        return Eligibility(
            status=status,  # type: ignore[arg-type]
            diagnosis=tuple(c.ref for c in diagnosis), trials=tuple(trials), classes=classes,
            missing=tuple(missing) if status != "trd-documented" else (),
            summary=self.summary(status, trials, classes, missing),
            source=rules.source, episode_start=episode if diagnosis else None,
            other_exposures=tuple(others), suicidality=tuple(c.ref for c in suicidality),
            current=tuple(current))

    def missing(self, diagnosis: bool, trials: list[Trial],
                others: list[tuple[Trial, str]]) -> list[str]:
        out: list[str] = []
        if not diagnosis:
            out.append("no depression diagnosis: no active major depressive disorder recorded")
        if len(trials) < self.rules.min_trials:
            named = ", ".join(t.ingredient for t in trials) or "none"
            short = [f"{t.ingredient} {t.days} days" for t, why in others
                     if why.startswith("too short")]
            text = (f"fewer than two trials: {len(trials)} of at least "
                    f"{self.rules.trial_min_days} days ({named})")
            out.append(text + (f"; too short: {', '.join(short)}" if short else ""))
        unknown = [f"{t.ingredient} ({', '.join(t.evidence)})" for t, why in others
                   if why == "duration cannot be told"]
        if unknown:
            out.append(f"a trial whose duration cannot be told: {'; '.join(unknown)}")
        before = [f"{t.ingredient} from {t.start.isoformat()}" for t, why in others
                  if why == "before the episode"]
        if before:
            out.append(f"trials before the episode: {'; '.join(before)}")
        unread = [t for t in self.c.not_offered if t in _EVIDENCE_TYPES]
        if unread:
            out.append(f"not offered by this EHR, so not read: {', '.join(unread)}")
        return out

    def summary(self, status: str, trials: list[Trial], classes: int,
                missing: list[str]) -> str:
        listed = ", ".join(f"{t.ingredient} {t.days} days" for t in trials)
        if status == "trd-documented":
            return (f"Treatment-resistant depression documented: {len(trials)} antidepressant "
                    f"trials of at least {self.rules.trial_min_days} days in the current episode "
                    f"({listed}) in {classes} class(es). Dose adequacy was not assessed.")
        gaps = "; ".join(missing)
        if status == "mdsi-pathway":
            return ("Major depressive disorder with suicidal ideation or behaviour is recorded "
                    "with a current oral antidepressant (the MDSI indication); treatment "
                    f"resistance is not documented ({gaps}). Dose adequacy was not assessed.")
        return (f"Treatment resistance is not documented in the record ({gaps}). The record "
                "may be incomplete: check the history with the patient. Dose adequacy was not "
                "assessed.")


def assess(classified: Classified, matcher: Matcher, policy: BloodPressurePolicy) -> Eligibility:
    """The eligibility answer for one patient (needs a ruleset with eligibility)."""
    return _Assessment(classified, matcher, policy).run()

