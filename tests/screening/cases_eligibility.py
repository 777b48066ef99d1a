"""Eligibility cases (REFERENCE, Indication): every branch both ways, registered into ``CASES``.

The evaluation time is 2026-06-15. Durations are end minus start in days (a period from
2025-02-01 to 2025-04-15 is 73 days), unions of overlapping intervals count once.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.builders import ATC, SNOMED, PatientBuilder
from tests.screening.cases import CASES, Expected, case

Build = Callable[[PatientBuilder], dict[str, list[str]]]

MDD = ("F33.1", "Major depressive disorder, recurrent, moderate")
FEWER = "fewer than two trials"
NO_DX = "no depression diagnosis"
UNKNOWN = "a trial whose duration cannot be told"
BEFORE = "trials before the episode"


def elig(name: str, expected: Expected, verdict: str = "suitable",
         **kwargs: object) -> Callable[[Build], None]:
    def register(build: Build) -> None:
        case(name, verdict, **kwargs)(build)  # type: ignore[arg-type]
        CASES[-1].eligibility = expected

    return register


def mdd(p: PatientBuilder, onset: str = "2025-01-01") -> str:
    return p.condition(*MDD, onset=onset)


def sertraline_73_days(p: PatientBuilder) -> str:
    return p.medication("36437", "sertraline", status="completed", start="2025-02-01",
                        period_end="2025-04-15")


def two_trials(p: PatientBuilder) -> None:
    """Sertraline 73 days (SSRI) and venlafaxine 61 days (SNRI), both by effective period."""
    sertraline_73_days(p)
    p.medication("39786", "venlafaxine", status="stopped", start="2025-05-01",
                 period_end="2025-07-01")


@elig("TRD documented by effective periods (two classes)", Expected(
    "trd-documented", [("sertraline", 73, "period"), ("venlafaxine", 61, "period")], 2))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    two_trials(p)
    return {}


@elig("TRD documented by supply x repeats (one class)", Expected(
    "trd-documented", [("bupropion", 60, "supply x repeats"),
                       ("mirtazapine", 90, "supply x repeats")], 1))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.medication("42347", "bupropion", request=True, status="stopped", authored="2025-03-01",
                 supply_days=30, repeats=1)
    p.medication("15996", "mirtazapine", request=True, status="completed",
                 authored="2025-06-01", supply_days=30, repeats=2)
    return {}


@elig("TRD documented by repeated orders and by dispenses", Expected(
    "trd-documented", [("escitalopram", 59, "repeated orders"),
                       ("fluoxetine", 60, "dispense days supply")], 1))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    for day in ("2025-02-01", "2025-03-01", "2025-04-01"):
        p.medication("321988", "escitalopram", request=True, status="stopped", authored=day)
    p.dispense("4493", "fluoxetine", handed_over="2025-06-01", days_supply=30)
    p.dispense(text="fluoxetine 20 MG Oral Capsule", handed_over="2025-07-01", days_supply=30)
    return {}


@elig("TRD documented with an ongoing current antidepressant", Expected(
    "trd-documented", [("duloxetine", 106, "ongoing"), ("sertraline", 60, "period")], 2))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.medication("72625", "duloxetine", status="active", start="2026-03-01")
    p.medication(text="Zoloft 50 mg", status="completed", start="2025-03-01",
                 period_end="2025-04-30")
    return {}


@elig("a trial under 42 days does not count", Expected(
    "not-documented", [("venlafaxine", 61, "period")], 1, [FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.medication("36437", "sertraline", status="stopped", start="2025-02-01",
                 period_end="2025-03-13")
    p.medication("39786", "venlafaxine", status="stopped", start="2025-05-01",
                 period_end="2025-07-01")
    return {}


@elig("exactly 42 days is a trial", Expected(
    "trd-documented", [("citalopram", 42, "period"), ("venlafaxine", 61, "period")], 2))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.medication("2556", "citalopram", status="stopped", start="2025-02-01",
                 period_end="2025-03-15")
    p.medication("39786", "venlafaxine", status="stopped", start="2025-05-01",
                 period_end="2025-07-01")
    return {}


@elig("one trial only", Expected("not-documented", [("paroxetine", 120, "period")], 1,
                                 [FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.medication(text="paroxetine 20 mg", status="completed", start="2025-02-01",
                 period_end="2025-06-01")
    return {}


@elig("bipolar and remission codes are no depression diagnosis", Expected(
    "not-documented", [("sertraline", 73, "period"), ("venlafaxine", 61, "period")], 2,
    [NO_DX], diagnosis=[]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("F31.9", "Bipolar disorder, unspecified", onset="2025-01-01")
    p.condition("F33.41", "Major depressive disorder, recurrent, in partial remission",
                onset="2025-01-01")
    p.condition(text="Major depression in full remission")
    two_trials(p)
    return {}


@elig("smoking-cessation bupropion, oral selegiline and Silenor are not trials", Expected(
    "not-documented", [("sertraline", 73, "period")], 1, [FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    sertraline_73_days(p)
    p.medication(text="bupropion hydrochloride 150 MG Extended Release Oral Tablet [Zyban]",
                 status="completed", start="2025-05-01", period_end="2025-08-01")
    p.medication("42347", "bupropion", request=True, status="completed",
                 authored="2025-05-01", supply_days=90, reason="Smoking cessation")
    p.medication(text="selegiline hydrochloride 5 MG Oral Capsule", status="completed",
                 start="2025-05-01", period_end="2025-09-01")
    p.medication(text="doxepin 3 MG Oral Tablet [Silenor]", status="completed",
                 start="2025-05-01", period_end="2025-09-01")
    return {}


@elig("transdermal selegiline (Emsam) and doxepin 75 mg are trials", Expected(
    "trd-documented", [("doxepin", 92, "period"), ("selegiline", 123, "period")], 2))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.medication(text="selegiline 6 MG/24HR Transdermal System [Emsam]", status="completed",
                 start="2025-05-01", period_end="2025-09-01")
    p.medication(text="doxepin 75 MG Oral Capsule", status="completed",
                 start="2025-10-01", period_end="2026-01-01")
    return {}


@elig("esketamine itself is no antidepressant trial", Expected(
    "not-documented", [("sertraline", 73, "period")], 1, [FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    sertraline_73_days(p)
    p.medication("N06AX27", "esketamine", system=ATC, status="completed", start="2025-05-01",
                 period_end="2025-09-01")
    return {}


@elig("trials before the current episode do not count", Expected(
    "not-documented", [], 0, [FEWER, BEFORE]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p, onset="2026-01-01")
    two_trials(p)
    return {}


@elig("undated diagnosis: trials within the 730-day look-back count", Expected(
    "trd-documented", [("sertraline", 73, "period"), ("trazodone", 92, "period")], 2))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("370143000", "Major depressive disorder", system=SNOMED, recorded=None)
    sertraline_73_days(p)
    p.medication(text="trazodone 100 mg", status="completed", start="2025-05-01",
                 period_end="2025-08-01")
    p.medication("39786", "venlafaxine", status="completed", start="2023-01-01",
                 period_end="2023-06-01")
    return {}


@elig("a stopped order with no supply has a duration that cannot be told", Expected(
    "not-documented", [("sertraline", 73, "period")], 1, [FEWER, UNKNOWN]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    sertraline_73_days(p)
    p.medication("2597", "clomipramine", request=True, status="stopped",
                 authored="2025-06-01")
    return {}


@elig("MDSI: depression, suicidal ideation and a current oral antidepressant", Expected(
    "mdsi-pathway", [("sertraline", 45, "ongoing")], 1, [FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.condition("R45.851", "Suicidal ideations", onset="2026-06-01")
    p.medication("36437", "sertraline", request=True, authored="2026-05-01")
    return {}


@elig("no MDSI once suicidal ideation is resolved", Expected(
    "not-documented", [("sertraline", 45, "ongoing")], 1, [FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    p.condition("6471006", "Suicidal thoughts", system=SNOMED, clinical="resolved")
    p.medication("36437", "sertraline", request=True, authored="2026-05-01")
    return {}


@elig("eligibility never changes the verdict", Expected(
    "trd-documented", [("sertraline", 73, "period"), ("venlafaxine", 61, "period")], 2),
    verdict="contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    mdd(p)
    two_trials(p)
    return {"ci-aneurysm": [p.condition("I71.4", "Abdominal aortic aneurysm")]}


@elig("no depression diagnosis at all", Expected("not-documented", [], 0, [NO_DX, FEWER]))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("F41.1", "Generalized anxiety disorder")
    return {}
