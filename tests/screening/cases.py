"""The table of synthetic patients: every rule of the reference, firing and not firing.

Each case names the verdict it must reach, the rules that must fire with exactly the records they
must cite, and the rules that must stay silent. The same table runs through the Bundle path and,
in the integration suite, through the HAPI sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.builders import ATC, LOINC, RXNORM, SNOMED, PatientBuilder


@dataclass
class Case:
    name: str
    patient: PatientBuilder
    verdict: str
    fires: dict[str, list[str]] = field(default_factory=dict)
    silent: list[str] = field(default_factory=list)
    verdicts: dict[str, str] | None = None
    """Per product, when the products' verdicts differ (else both are ``verdict``)."""
    eligibility: Expected | None = None


@dataclass
class Expected:
    """The eligibility a case must reach: status, trials (ingredient, days, basis), classes,
    and the beginnings of the ``missing`` entries (all of them, in order)."""

    status: str
    trials: list[tuple[str, int, str]] = field(default_factory=list)
    classes: int = 0
    missing: list[str] = field(default_factory=list)
    diagnosis: list[str] | None = None


CASES: list[Case] = []


def case(name: str, verdict: str, *, silent: tuple[str, ...] = (), birth: str = "1980-03-01",
         vitals: bool = True, ketamine: str | None = None, esketamine: str | None = None,
         ) -> Callable[[Callable[[PatientBuilder], dict[str, list[str]]]], None]:
    """Register a case: the decorated function builds the patient and returns what must fire.

    ``verdict`` is the overall verdict; ``ketamine`` / ``esketamine`` the per-product verdicts
    where they differ from it."""

    def register(build: Callable[[PatientBuilder], dict[str, list[str]]]) -> None:
        patient = PatientBuilder(f"t{len(CASES) + 1:03d}", birth=birth, normal_vitals=vitals)
        fires = build(patient)
        verdicts = {"ketamine": ketamine or verdict, "esketamine": esketamine or verdict}
        CASES.append(Case(name, patient, verdict, fires, list(silent), verdicts))

    return register


# --- Contraindications: aneurysm, AVM, intracerebral haemorrhage (history rules) -----------

@case("aneurysm by ICD-10-CM prefix", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-aneurysm": [p.condition("I71.40", "Abdominal aortic aneurysm, without rupture")]}


@case("aneurysm resolved still counts (history rule)", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-aneurysm": [p.condition("I71.2", "Thoracic aortic aneurysm", clinical="resolved")]}


@case("aortic dissection I71.0 counts as aneurysmal disease", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-aneurysm": [p.condition("I71.00", "Dissection of unspecified site of aorta")]}


@case("aneurysm by SNOMED CT only", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-aneurysm": [p.condition("233985008", "Abdominal aortic aneurysm", system=SNOMED)]}


@case("aneurysm by name in free text only", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-aneurysm": [p.condition(text="Berry aneurysm, left middle cerebral artery")]}


@case("aneurysm refuted does not count", "suitable", silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("I71.4", "Abdominal aortic aneurysm", verification="refuted")
    return {}


@case("aneurysm entered in error does not count", "suitable", silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("I71.4", "Abdominal aortic aneurysm", verification="entered-in-error")
    return {}


@case("family history of aneurysm (text) does not count", "suitable", silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition(text="Family history of abdominal aortic aneurysm")
    return {}


@case("family history ICD Z82 with aneurysm words does not count", "suitable",
      silent=("ci-aneurysm", "pr-cardiovascular"))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("Z82.49", "Family history of ischemic heart disease and aneurysm")
    return {}


@case("negated text: no history of aneurysm", "suitable", silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition(text="No history of aneurysm")
    return {}


@case("arteriovenous malformation by code", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-avm": [p.condition("Q28.2", "Arteriovenous malformation of cerebral vessels")]}


@case("AVM by abbreviation in text", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-avm": [p.condition(text="Spinal AVM", clinical="inactive")]}


@case("intracerebral haemorrhage, resolved, by ICD", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-intracerebral-haemorrhage": [
        p.condition("I61.9", "Nontraumatic intracerebral hemorrhage, unspecified",
                    clinical="resolved")]}


@case("sequelae of intracerebral haemorrhage I69.1", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-intracerebral-haemorrhage": [
        p.condition("I69.10", "Unspecified sequelae of nontraumatic intracerebral hemorrhage")]}


@case("cerebral haemorrhage by SNOMED CT", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-intracerebral-haemorrhage": [
        p.condition("274100004", "Cerebral hemorrhage", system=SNOMED)]}


@case("ruled-out intracerebral haemorrhage does not count", "suitable",
      silent=("ci-intracerebral-haemorrhage",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition(text="Intracerebral hemorrhage ruled out on CT")
    return {}


@case("family history of AVM does not count", "suitable", silent=("ci-avm",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition(text="FHx: brain AVM (mother with AVM)")
    return {}


# --- Hypersensitivity (AllergyIntolerance) ----------------------------------------------

@case("ketamine allergy by RxNorm", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-hypersensitivity": [p.allergy("6130", "ketamine")]}


@case("esketamine allergy by brand name text", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-hypersensitivity": [p.allergy(text="Spravato")]}


@case("ketamine allergy by ATC", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-hypersensitivity": [p.allergy("N01AX03", "ketamine", system=ATC)]}


@case("resolved ketamine allergy does not count", "suitable", silent=("ci-hypersensitivity",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.allergy("6130", "ketamine", clinical="resolved")
    return {}


@case("refuted ketamine allergy does not count", "suitable", silent=("ci-hypersensitivity",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.allergy("6130", "ketamine", verification="refuted")
    return {}


@case("penicillin allergy is not a ketamine allergy", "suitable",
      silent=("ci-hypersensitivity",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.allergy("7980", "penicillin G")
    return {}


# --- Blood pressure ------------------------------------------------------------------------

@case("systolic above 180 is uncontrolled", "contraindicated", silent=("pr-bp-elevated",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-bp-uncontrolled": [p.bp(186, 95)]}


@case("diastolic above 100 is uncontrolled", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-bp-uncontrolled": [p.bp(168, 104)]}


@case("180/100 exactly is elevated, not uncontrolled", "needs-review",
      silent=("ci-bp-uncontrolled",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-bp-elevated": [p.bp(180, 100)]}


@case("systolic above 140 is elevated", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-bp-elevated": [p.bp(146, 84)]}


@case("diastolic above 90 is elevated", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-bp-elevated": [p.bp(132, 94)]}


@case("140/90 exactly is not elevated", "suitable", silent=("pr-bp-elevated",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.bp(140, 90, days_ago=1)
    return {}


@case("the latest reading decides: old high, newer normal", "suitable",
      silent=("ci-bp-uncontrolled", "pr-bp-elevated"))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.bp(195, 112, days_ago=10)
    return {}


@case("the latest reading decides: newer high", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-bp-uncontrolled": [p.bp(190, 108, days_ago=1)]}


@case("only a stale reading (40 days) is missing data", "insufficient-data", vitals=False,
      silent=("ci-bp-uncontrolled",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.bp(200, 120, days_ago=40)
    p.weight(70)
    return {"md-blood-pressure": []}


@case("no blood pressure at all is missing data", "insufficient-data", vitals=False)
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.weight(70)
    return {"md-blood-pressure": []}


@case("paired systolic and diastolic readings", "contraindicated", vitals=False)
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.weight(70)
    systolic = p.single("8480-6", 184, days_ago=2)
    diastolic = p.single("8462-4", 96, days_ago=2)
    return {"ci-bp-uncontrolled": [systolic, diastolic]}


@case("a reading in kPa is not used and is reported", "insufficient-data", vitals=False,
      silent=("ci-bp-uncontrolled",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.weight(70)
    reading = p.bp(26, 14, unit="kPa")
    return {"md-blood-pressure": [], "info-bp-unusable": [reading]}


@case("a reading with no unit is not used", "insufficient-data", vitals=False)
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.weight(70)
    reading = p.bp(190, 110, unit=None)
    return {"md-blood-pressure": [], "info-bp-unusable": [reading]}


@case("an entered-in-error reading does not count", "suitable",
      silent=("ci-bp-uncontrolled",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.bp(199, 119, days_ago=0.5, status="entered-in-error")
    return {}


@case("a preliminary reading counts", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-bp-uncontrolled": [p.bp(183, 99, days_ago=0.5, status="preliminary")]}


@case("a reading after the evaluation time does not count", "suitable",
      silent=("ci-bp-uncontrolled",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.bp(199, 119, days_ago=-2)
    return {}


# --- Precautions from conditions -------------------------------------------------------------

@case("hypertensive crisis in history", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-hypertensive-crisis": [
        p.condition("I16.1", "Hypertensive emergency", clinical="resolved")]}


@case("negated hypertensive crisis does not count", "suitable",
      silent=("pr-hypertensive-crisis",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition(text="No hypertensive crisis")
    return {}


@case("hypertensive encephalopathy I67.4", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-hypertensive-crisis": [p.condition("I67.4", "Hypertensive encephalopathy")]}


@case("old myocardial infarction", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-cardiovascular": [p.condition("I25.2", "Old myocardial infarction",
                                              clinical="inactive")]}


@case("heart failure", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-cardiovascular": [p.condition("I50.9", "Heart failure, unspecified")]}


@case("ischaemic stroke by SNOMED: ketamine contraindicated, esketamine precaution",
      "contraindicated", esketamine="needs-review", silent=("pr-cardiovascular",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    stroke = p.condition("422504002", "Ischemic stroke", system=SNOMED)
    return {"ci-prior-stroke": [stroke], "pr-prior-stroke": [stroke]}


@case("essential hypertension is not cardiovascular disease here", "suitable",
      silent=("pr-cardiovascular", "pr-hypertensive-crisis"))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("I10", "Essential (primary) hypertension")
    return {}


@case("schizophrenia", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-psychosis": [p.condition("F20.9", "Schizophrenia, unspecified",
                                         clinical="remission")]}


@case("depression with psychotic features F32.3", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-psychosis": [p.condition(
        "F32.3", "Major depressive disorder, single episode, severe with psychotic features")]}


@case("depression without psychotic features is not psychosis", "suitable",
      silent=("pr-psychosis",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("F32.2", "Major depressive disorder, single episode, severe without psychotic "
                "features")
    p.condition(text="Recurrent depression without psychotic features")
    return {}


@case("psychotic disorder by SNOMED CT", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-psychosis": [p.condition("69322001", "Psychotic disorder", system=SNOMED)]}


@case("alcohol use disorder in remission", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-substance-use": [p.condition("F10.21", "Alcohol dependence, in remission",
                                             clinical="remission")]}


@case("cannabis use disorder", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-substance-use": [p.condition("F12.20", "Cannabis dependence, uncomplicated")]}


@case("nicotine dependence is excluded", "suitable", silent=("pr-substance-use",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("F17.210", "Nicotine dependence, cigarettes, uncomplicated")
    return {}


@case("denied substance use does not count", "suitable", silent=("pr-substance-use",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition(text="Patient denies alcohol abuse")
    return {}


@case("pregnancy Z33.1 active", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-pregnancy": [p.condition("Z33.1", "Pregnant state, incidental")]}


@case("pregnancy O-code resolved does not count (state rule)", "suitable",
      silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("O26.891", "Other specified pregnancy related conditions, first trimester",
                clinical="resolved")
    return {}


@case("pregnancy condition with no clinical status counts", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-pregnancy": [p.condition("O09.90", "Supervision of high risk pregnancy",
                                         clinical=None)]}


@case("pregnancy status observation: pregnant", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-pregnancy": [p.pregnancy_status("LA15173-0", "Pregnant")]}


@case("pregnancy status observation: not pregnant", "suitable", silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.pregnancy_status("LA26683-5", "Not pregnant")
    return {}


@case("pregnancy status: a newer 'not pregnant' answer decides", "suitable",
      silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.pregnancy_status("LA15173-0", "Pregnant", days_ago=200)
    p.pregnancy_status("LA26683-5", "Not pregnant", days_ago=5)
    return {}


@case("breastfeeding active", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-breastfeeding": [p.condition("Z39.1", "Encounter for care and examination of "
                                                      "lactating mother")]}


@case("breastfeeding inactive does not count", "suitable", silent=("pr-breastfeeding",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("Z39.1", "Encounter for care and examination of lactating mother",
                clinical="inactive")
    return {}


@case("raised intracranial pressure active", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-raised-icp": [p.condition("G93.2", "Benign intracranial hypertension")]}


@case("cerebral oedema resolved does not count", "suitable", silent=("pr-raised-icp",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("G93.6", "Cerebral edema", clinical="resolved")
    return {}


@case("hepatic failure active", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-hepatic-impairment": [p.condition("K72.10", "Chronic hepatic failure without "
                                                             "coma")]}


@case("cirrhosis inactive does not count", "suitable", silent=("pr-hepatic-impairment",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("K74.60", "Unspecified cirrhosis of liver", clinical="inactive")
    return {}


@case("hyperthyroidism active", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-hyperthyroidism": [p.condition("E05.90", "Thyrotoxicosis, unspecified")]}


@case("hypothyroidism is not hyperthyroidism", "suitable", silent=("pr-hyperthyroidism",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("E03.9", "Hypothyroidism, unspecified")
    return {}


@case("interstitial cystitis in history", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-cystitis": [p.condition("N30.10", "Interstitial cystitis (chronic) without "
                                                  "hematuria", clinical="resolved")]}


@case("acute bacterial cystitis is not interstitial cystitis", "suitable",
      silent=("pr-cystitis",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("N30.00", "Acute cystitis without hematuria")
    return {}


@case("age 17 at evaluation time", "needs-review", birth="2009-01-20")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-age-under-18": [f"Patient/{p.pid}"]}


@case("18th birthday on the evaluation day", "suitable", birth="2008-06-15",
      silent=("pr-age-under-18",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {}


# --- Interactions ------------------------------------------------------------------------------

@case("benzodiazepine by RxNorm ingredient", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-benzodiazepines": [p.medication("3322", "diazepam")]}


@case("benzodiazepine by brand name only", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-benzodiazepines": [p.medication(text="Xanax 0.5 mg tablet")]}


@case("benzodiazepine by ATC prefix", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-benzodiazepines": [p.medication("N05BA12", "alprazolam", system=ATC)]}


@case("completed benzodiazepine does not count", "suitable", silent=("ix-benzodiazepines",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.medication("6470", "lorazepam", status="completed")
    return {}


@case("benzodiazepine whose period ended before evaluation does not count", "suitable",
      silent=("ix-benzodiazepines",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.medication("6960", "midazolam", period_end="2026-05-01")
    return {}


@case("benzodiazepine whose period ends after evaluation counts", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-benzodiazepines": [p.medication("7781", "oxazepam", period_end="2026-12-31")]}


@case("intended and on-hold statements count", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-benzodiazepines": [p.medication("21241", "clobazam", status="intended"),
                                   p.medication(text="Klonopin", status="on-hold")]}


@case("not-taken statement does not count", "suitable", silent=("ix-benzodiazepines",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.medication("3322", "diazepam", status="not-taken")
    return {}


@case("active MedicationRequest counts", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-opioids": [p.medication("7804", "oxycodone", request=True)]}


@case("stopped MedicationRequest does not count", "suitable", silent=("ix-opioids",))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.medication("7052", "morphine", request=True, status="stopped")
    return {}


@case("opioid in a contained Medication", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-opioids": [p.medication("4337", "fentanyl", form="contained")]}


@case("opioid in a referenced Medication", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-opioids": [p.medication("6813", "methadone", form="referenced")]}


@case("opioid by ATC N07BC (buprenorphine)", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-opioids": [p.medication("N07BC01", "buprenorphine", system=ATC)]}


@case("psychostimulant by brand (Ritalin)", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-psychostimulants": [p.medication(text="Ritalin LA 20 mg")]}


@case("modafinil by RxNorm", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-psychostimulants": [p.medication("30125", "modafinil")]}


@case("Z-drug hypnotic", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-cns-depressants": [p.medication(text="Ambien 10 mg at night")]}


@case("MAO inhibitor", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-maoi": [p.medication(text="phenelzine 15 mg")]}


@case("selegiline patch by brand", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-maoi": [p.medication(text="Emsam 6 mg/24 hr transdermal")]}


@case("theophylline", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-xanthines": [p.medication("R03DA04", "theophylline", system=ATC)]}


@case("pseudoephedrine", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-sympathomimetics": [p.medication(text="Sudafed 60 mg")]}


@case("levothyroxine is a minor interaction, shown only", "suitable")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-thyroid-hormones": [p.medication(text="levothyroxine 75 mcg")]}


@case("lamotrigine and carbamazepine are minor interactions", "suitable")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-lamotrigine-naltrexone": [p.medication("28439", "lamotrigine")],
            "ix-cyp-modifiers": [p.medication("2002", "carbamazepine")]}


@case("antidepressants, lithium and antipsychotics raise no interaction", "suitable",
      silent=("ix-opioids", "ix-benzodiazepines", "ix-cns-depressants",
              "ix-psychostimulants", "ix-maoi", "ix-xanthines", "ix-sympathomimetics",
              "ix-thyroid-hormones", "ix-cyp-modifiers", "ix-lamotrigine-naltrexone"))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    for code, name in (("36437", "sertraline"), ("39786", "venlafaxine"),
                       ("42347", "bupropion"), ("15996", "mirtazapine"),
                       ("6448", "lithium carbonate"), ("51272", "quetiapine")):
        p.medication(code, name)
    p.medication("N06AX27", "esketamine", system=ATC)
    return {}


# --- Combinations and data quality -------------------------------------------------------------

@case("contraindication outranks precaution and interaction", "contraindicated")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ci-avm": [p.condition("Q28.0", "Arteriovenous malformation of precerebral vessels")],
            "pr-psychosis": [p.condition("F25.0", "Schizoaffective disorder, bipolar type")],
            "ix-opioids": [p.medication(text="tramadol 50 mg")]}


@case("precaution outranks missing data", "needs-review", vitals=False)
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"pr-hyperthyroidism": [p.condition("E05.00", "Graves disease")],
            "md-blood-pressure": []}


@case("two records for one rule are both cited", "needs-review")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    return {"ix-benzodiazepines": [p.medication("3322", "diazepam"),
                                   p.medication(text="lorazepam 1 mg", request=True)]}


@case("a plain suitable patient", "suitable",
      silent=("md-blood-pressure", "pr-bp-elevated", "info-weight-missing"))
def _(p: PatientBuilder) -> dict[str, list[str]]:
    p.condition("F33.1", "Major depressive disorder, recurrent, moderate")
    p.condition("J45.909", "Unspecified asthma, uncomplicated")
    p.medication("36437", "sertraline")
    return {}


@case("hCG and heart-rate observations do not disturb the screen", "suitable")
def _(p: PatientBuilder) -> dict[str, list[str]]:
    obs = {"resourceType": "Observation", "id": f"{p.pid}-hr", "status": "final",
           "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
           "subject": p.subject, "effectiveDateTime": "2026-06-14T10:00:00Z",
           "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org",
                             "code": "/min"}}
    p.add(obs)
    p.medication(text="acetaminophen 500 mg", system=RXNORM)
    return {}


# The cases of what ruleset v2 added, and of eligibility, register into CASES on import.
from tests.screening import cases_eligibility, cases_v2  # noqa: E402

assert cases_v2 and cases_eligibility
assert len(CASES) >= 60, len(CASES)
