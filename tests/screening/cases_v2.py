"""Cases for what ruleset v2 added or changed: new rules, products, value sets, excluded codes,
scoped negation, dates, a code that decides what a record is. Registered into ``CASES``."""

from __future__ import annotations

from tests.builders import ATC, SNOMED, PatientBuilder
from tests.screening.cases import case

Fires = dict[str, list[str]]

# --- New contraindications -----------------------------------------------------------------


@case("pre-eclampsia by SNOMED CT (Synthea shape)", "contraindicated")
def _(p: PatientBuilder) -> Fires:
    return {"ci-pre-eclampsia": [p.condition("398254007", "Preeclampsia", system=SNOMED,
                                             onset="2026-05-20")]}


@case("antepartum eclampsia SNOMED 198992004", "contraindicated")
def _(p: PatientBuilder) -> Fires:
    return {"ci-pre-eclampsia": [p.condition("198992004", "Antepartum eclampsia",
                                             system=SNOMED)]}


@case("pre-eclampsia resolved does not count (state rule)", "suitable",
      silent=("ci-pre-eclampsia",))
def _(p: PatientBuilder) -> Fires:
    p.condition("O14.10", "Severe pre-eclampsia, unspecified trimester", clinical="resolved")
    return {}


@case("prior stroke Z86.73: ketamine contraindication, esketamine precaution",
      "contraindicated", esketamine="needs-review")
def _(p: PatientBuilder) -> Fires:
    c = p.condition("Z86.73", "Personal history of TIA, and cerebral infarction without "
                    "residual deficits", clinical="resolved")
    return {"ci-prior-stroke": [c], "pr-prior-stroke": [c]}


@case("CVA tenderness and heat stroke are not strokes", "suitable",
      silent=("ci-prior-stroke", "pr-prior-stroke", "pr-cardiovascular"))
def _(p: PatientBuilder) -> Fires:
    p.condition(text="CVA tenderness on the left")
    p.condition("T67.01XA", "Heatstroke and sunstroke, initial encounter")
    p.condition(text="heat stroke 2019")
    return {}


@case("thyroid storm E05.01: the contraindication, not the hyperthyroidism precaution",
      "contraindicated", silent=("pr-hyperthyroidism",))
def _(p: PatientBuilder) -> Fires:
    return {"ci-thyroid-storm": [p.condition(
        "E05.01", "Thyrotoxicosis with diffuse goiter with thyrotoxic crisis or storm")]}


@case("hyperthyroidism E05.00 is the precaution only", "needs-review",
      silent=("ci-thyroid-storm",))
def _(p: PatientBuilder) -> Fires:
    return {"pr-hyperthyroidism": [p.condition(
        "E05.00", "Thyrotoxicosis with diffuse goiter without thyrotoxic crisis or storm")]}


@case("aneurysm of the heart I25.3 is cardiovascular, not the aneurysm contraindication",
      "needs-review", silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> Fires:
    heart = p.condition("I25.3", "Aneurysm of heart")
    coronary = p.condition("I25.41", "Coronary artery aneurysm")
    return {"pr-cardiovascular": [heart, coronary]}


@case("subarachnoid haemorrhage I60.9 is a precaution, not the haemorrhage contraindication",
      "needs-review", silent=("ci-intracerebral-haemorrhage",))
def _(p: PatientBuilder) -> Fires:
    return {"pr-cardiovascular": [p.condition("I60.9", "Nontraumatic subarachnoid hemorrhage, "
                                                       "unspecified", clinical="resolved")]}


@case("SNOMED 703221003 is not an AVM code, but an AVM display still matches by name",
      "contraindicated")
def _(p: PatientBuilder) -> Fires:
    p.condition("703221003", "Congenital intracranial vascular malformation", system=SNOMED)
    avm = p.condition("703221003", "Arteriovenous malformation of brain", system=SNOMED)
    return {"ci-avm": [avm]}


@case("congenital intracranial vascular malformation alone is no AVM", "suitable",
      silent=("ci-avm",))
def _(p: PatientBuilder) -> Fires:
    p.condition("703221003", "Congenital intracranial vascular malformation", system=SNOMED)
    return {}


# --- New and widened precautions --------------------------------------------------------------


@case("pulmonary emphysema SNOMED 87433001", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-respiratory-depression": [p.condition("87433001", "Pulmonary emphysema",
                                                      system=SNOMED)]}


@case("obstructive sleep apnoea by value set (ICD G47.33) and COPD J44.9", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-respiratory-depression": [
        p.condition("G47.33", "Obstructive sleep apnea (adult) (pediatric)"),
        p.condition("J44.9", "Chronic obstructive pulmonary disease, unspecified")]}


@case("narcolepsy and an opioid-induced sleep disorder are not respiratory-depression risk",
      "needs-review", silent=("pr-respiratory-depression",))
def _(p: PatientBuilder) -> Fires:
    p.condition("G47.411", "Narcolepsy with cataplexy")
    p.condition("G47.26", "Circadian rhythm sleep disorder, shift work type")
    sud = p.condition("F11.282", "Opioid dependence with opioid-induced sleep disorder")
    return {"pr-substance-use": [sud]}


@case("opioid abuse SNOMED 5602001 and a substance-misuse value-set member", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-substance-use": [
        p.condition("5602001", "Opioid abuse (disorder)", system=SNOMED),
        p.condition("31956009", "Cocaine dependence", system=SNOMED)]}


@case("alcohol intoxication now", "needs-review")
def _(p: PatientBuilder) -> Fires:
    c = p.condition("F10.129", "Alcohol abuse with intoxication, unspecified")
    return {"pr-alcohol-intoxication": [c], "pr-substance-use": [c]}


@case("past alcohol intoxication (resolved) is not intoxication now", "needs-review",
      silent=("pr-alcohol-intoxication",))
def _(p: PatientBuilder) -> Fires:
    c = p.condition("F10.129", "Alcohol abuse with intoxication, unspecified",
                    clinical="resolved")
    return {"pr-substance-use": [c]}


@case("'Pregnancy, no complications' is a pregnancy (display and free text)", "needs-review")
def _(p: PatientBuilder) -> Fires:
    coded = p.condition("72892002", "Normal pregnancy", system=SNOMED,
                        text="Pregnancy, no complications", onset="2026-03-01")
    free = p.condition(text="Pregnancy, no complications", onset="2026-03-01")
    weeks = p.condition("Z3A.20", "20 weeks gestation of pregnancy", onset="2026-03-01")
    return {"pr-pregnancy": [coded, free, weeks]}


@case("abortion O03 and puerperium O85-O92 do not raise the pregnancy precaution", "suitable",
      silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> Fires:
    p.condition("O03.9", "Complete or unspecified spontaneous abortion without complication")
    p.condition("O04.89", "(Induced) termination of pregnancy with other complications")
    p.condition("O86.4", "Pyrexia of unknown origin following delivery")
    return {}


@case("a stale pregnancy (onset 2 years ago, no end) asks to update the problem list",
      "suitable", silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> Fires:
    return {"info-pregnancy-stale": [p.condition("79586000", "Tubal pregnancy", system=SNOMED,
                                                 onset="2024-04-01")]}


@case("a recent pregnancy is not stale", "needs-review", silent=("info-pregnancy-stale",))
def _(p: PatientBuilder) -> Fires:
    return {"pr-pregnancy": [p.condition("77386006", "Pregnancy", system=SNOMED,
                                         onset="2026-02-01")]}


@case("a pregnancy that began after the evaluation time does not count", "suitable",
      silent=("pr-pregnancy", "info-pregnancy-stale"))
def _(p: PatientBuilder) -> Fires:
    p.condition("72892002", "Normal pregnancy", system=SNOMED, onset="2027-09-01",
                recorded="2027-09-01")
    return {}


@case("resolved now, but abated after the evaluation time: active then", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-pregnancy": [p.condition("72892002", "Normal pregnancy", system=SNOMED,
                                         onset="2026-01-10", abatement="2026-09-30",
                                         clinical="resolved")]}


@case("abated before the evaluation time: not counted (state)", "suitable",
      silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> Fires:
    p.condition("72892002", "Normal pregnancy", system=SNOMED, onset="2025-06-10",
                abatement="2026-03-01", clinical="inactive")
    return {}


@case("lactating SNOMED 169750002", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-breastfeeding": [p.condition("169750002", "Lactating", system=SNOMED)]}


@case("normal pressure hydrocephalus G91.2 is not raised intracranial pressure", "suitable",
      silent=("pr-raised-icp",))
def _(p: PatientBuilder) -> Fires:
    p.condition("G91.2", "(Idiopathic) normal pressure hydrocephalus")
    p.condition(text="Normal pressure hydrocephalus")
    return {}


@case("obstructive hydrocephalus and a brain tumour are raised ICP", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-raised-icp": [p.condition("G91.1", "Obstructive hydrocephalus"),
                              p.condition("C71.9", "Malignant neoplasm of brain, unspecified")]}


@case("traumatic brain injury S06.5 in history", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-tbi": [p.condition("S06.5X0A", "Traumatic subdural hemorrhage without loss of "
                                               "consciousness, initial encounter",
                                   clinical="resolved")]}


@case("concussion (S06.0, Synthea 'with no loss of consciousness') is not TBI", "suitable",
      silent=("pr-tbi",))
def _(p: PatientBuilder) -> Fires:
    p.condition("S06.0X0A", "Concussion without loss of consciousness, initial encounter")
    p.condition("62106007", "Concussion with no loss of consciousness", system=SNOMED)
    return {}


@case("traumatic brain injury by SNOMED 127295002", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-tbi": [p.condition("127295002", "Traumatic brain injury", system=SNOMED)]}


@case("cirrhosis K74.60 is information, not severe hepatic impairment", "suitable",
      silent=("pr-hepatic-impairment",))
def _(p: PatientBuilder) -> Fires:
    return {"info-cirrhosis": [p.condition("K74.60", "Unspecified cirrhosis of liver")]}


@case("decompensated cirrhosis in text is the precaution, not the information", "needs-review",
      silent=("info-cirrhosis",))
def _(p: PatientBuilder) -> Fires:
    return {"pr-hepatic-impairment": [p.condition(text="Decompensated cirrhosis")]}


@case("glaucoma: a ketamine precaution, esketamine information", "needs-review",
      esketamine="suitable")
def _(p: PatientBuilder) -> Fires:
    g = p.condition("H40.1131", "Primary open-angle glaucoma, bilateral, mild stage")
    return {"pr-glaucoma": [g], "info-glaucoma-esketamine": [g]}


@case("glaucoma suspect H40.0 counts for neither product", "suitable",
      silent=("pr-glaucoma", "info-glaucoma-esketamine"))
def _(p: PatientBuilder) -> Fires:
    p.condition("H40.001", "Preglaucoma, unspecified, right eye")
    return {}


@case("atrial fibrillation and cardiac arrest by SNOMED (Synthea shape)", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-cardiovascular": [
        p.condition("49436004", "Atrial fibrillation (disorder)", system=SNOMED),
        p.condition("410429000", "Cardiac arrest (disorder)", system=SNOMED,
                    clinical="resolved")]}


@case("Vincent's angina and Ludwig's angina are not heart disease", "suitable",
      silent=("pr-cardiovascular",))
def _(p: PatientBuilder) -> Fires:
    p.condition("A69.1", "Other Vincent's infections", text="Vincent's angina")
    p.condition(text="Ludwig's angina")
    return {}


@case("pulmonary hypertension I27.0 and valve disease I35.0", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-cardiovascular": [p.condition("I27.0", "Primary pulmonary hypertension"),
                                  p.condition("I35.0", "Nonrheumatic aortic (valve) stenosis")]}


@case("psychosis: 'without psychotic features' in a display stops the name", "suitable",
      silent=("pr-psychosis",))
def _(p: PatientBuilder) -> Fires:
    p.condition("370143000", "Major depressive disorder, without psychotic features",
                system=SNOMED)
    return {}


# --- Information -----------------------------------------------------------------------------


@case("seizure disorder SNOMED 128613002, and theophylline names it", "needs-review")
def _(p: PatientBuilder) -> Fires:
    seizure = p.condition("128613002", "Seizure disorder", system=SNOMED)
    return {"info-seizure-disorder": [seizure],
            "ix-xanthines": [p.medication("R03DA04", "theophylline", system=ATC)]}


@case("dementia G30.9", "suitable")
def _(p: PatientBuilder) -> Fires:
    return {"info-cognitive-impairment": [p.condition("G30.9", "Alzheimer's disease, "
                                                               "unspecified")]}


@case("age 65 or older", "suitable", birth="1955-02-01", silent=("info-age-18-to-24",))
def _(p: PatientBuilder) -> Fires:
    return {"info-age-65-or-older": [f"Patient/{p.pid}"]}


@case("age 18 to 24", "suitable", birth="2004-01-10", silent=("info-age-65-or-older",))
def _(p: PatientBuilder) -> Fires:
    return {"info-age-18-to-24": [f"Patient/{p.pid}"]}


@case("overdose T40.1X1A is information; an adverse effect T40.2X5A is not", "suitable")
def _(p: PatientBuilder) -> Fires:
    od = p.condition("T40.1X1A", "Poisoning by heroin, accidental (unintentional), initial "
                                 "encounter", clinical="resolved")
    p.condition("T40.2X5A", "Adverse effect of other opioids, initial encounter")
    return {"info-overdose-history": [od]}


@case("adverse effect of an opioid is no overdose", "suitable",
      silent=("info-overdose-history",))
def _(p: PatientBuilder) -> Fires:
    p.condition("T40.2X5A", "Adverse effect of other opioids, initial encounter")
    return {}


@case("no PHQ-9 in the last 30 days is information", "suitable", vitals=False)
def _(p: PatientBuilder) -> Fires:
    p.bp(120, 70)
    p.weight(70)
    p.phq9(18, days_ago=45)
    return {"info-phq9-baseline-missing": []}


# --- Negation scoped to free text and to the name ---------------------------------------------


@case("free text 'No history of stroke' does not count", "suitable",
      silent=("ci-prior-stroke", "pr-prior-stroke"))
def _(p: PatientBuilder) -> Fires:
    p.condition(text="No history of stroke")
    return {}


@case("a code match is never vetoed by negated free text", "contraindicated",
      esketamine="needs-review")
def _(p: PatientBuilder) -> Fires:
    c = p.condition("I63.9", "Cerebral infarction, unspecified", text="no stroke symptoms now")
    return {"ci-prior-stroke": [c], "pr-prior-stroke": [c]}


@case("negation is scoped to its name: 'no aneurysm, but prior stroke'", "contraindicated",
      esketamine="needs-review", silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> Fires:
    c = p.condition(text="No aneurysm seen but history of stroke in 2019")
    return {"ci-prior-stroke": [c], "pr-prior-stroke": [c]}


@case("a note ruling out the named condition stops a name match", "suitable",
      silent=("ci-aneurysm",))
def _(p: PatientBuilder) -> Fires:
    p.condition(text="Aortic aneurysm?", note="Aneurysm ruled out on CT angiography")
    return {}


@case("a note never vetoes a code match", "contraindicated")
def _(p: PatientBuilder) -> Fires:
    return {"ci-aneurysm": [p.condition("I71.4", "Abdominal aortic aneurysm, without rupture",
                                        note="aneurysm ruled out? repeat scan")]}


# --- Dates ------------------------------------------------------------------------------------


@case("records from after the evaluation time do not count", "suitable",
      silent=("ci-aneurysm", "ix-opioids", "ci-hypersensitivity"))
def _(p: PatientBuilder) -> Fires:
    p.condition("I71.4", "Abdominal aortic aneurysm", recorded="2026-08-01")
    p.medication("7804", "oxycodone", request=True, authored="2026-07-01")
    p.allergy("6130", "ketamine", recorded="2026-12-01")
    return {}


@case("an MI 2 months ago raises the cardiovascular precaution to high severity",
      "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"pr-cardiovascular": [p.condition("22298006", "Myocardial infarction",
                                              system=SNOMED, onset="2026-04-10",
                                              clinical="resolved")]}


# --- Drugs: value sets, products, code decides ------------------------------------------------


@case("RxNorm product code in the CDC opioid value set (Endocet)", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"ix-opioids": [p.medication("1049223", "acetaminophen 325 MG / oxycodone "
                                        "hydrochloride 5 MG Oral Tablet [Endocet]",
                                        request=True)]}


@case("remifentanil 73032", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"ix-opioids": [p.medication("73032", "Remifentanil")]}


@case("a code decides: an opioid product code displayed as 'Xanax' is an opioid",
      "needs-review", silent=("ix-benzodiazepines",))
def _(p: PatientBuilder) -> Fires:
    return {"ix-opioids": [p.medication("1049223", "Xanax 1 mg tablet", request=True)]}


@case("phentermine (CDC CNS-depressant set) is a psychostimulant, not a sedative",
      "needs-review", silent=("ix-cns-depressants",))
def _(p: PatientBuilder) -> Fires:
    return {"ix-psychostimulants": [p.medication(
        "1302845", "24 HR phentermine 3.75 MG / topiramate 23 MG Extended Release Oral "
        "Capsule [Qsymia]")]}


@case("meclizine (CDC CNS-depressant set) and gabapentin are CNS depressants", "needs-review",
      silent=("ix-psychostimulants",))
def _(p: PatientBuilder) -> Fires:
    return {"ix-cns-depressants": [
        p.medication("1251685", "meclizine hydrochloride 25 MG Oral Tablet [Verticalm]"),
        p.medication("25480", "gabapentin")]}


@case("cetirizine, loratadine and fexofenadine are not sedating antihistamines", "suitable",
      silent=("ix-cns-depressants",))
def _(p: PatientBuilder) -> Fires:
    p.medication("R06AE07", "cetirizine", system=ATC)
    p.medication(text="loratadine 10 mg")
    p.medication(text="fexofenadine 180 mg")
    return {}


@case("an epinephrine auto-injector never raises an interaction", "suitable",
      silent=("ix-sympathomimetics",))
def _(p: PatientBuilder) -> Fires:
    p.medication("727316", "0.3 ML EPINEPHrine 1 MG/ML Auto-Injector [EpiPen]", request=True)
    p.medication(text="epinephrine 0.3 mg injection", dosage="as needed for anaphylaxis",
                 as_needed=True)
    return {}


@case("norepinephrine and methylergonovine raise the sympathomimetic interaction",
      "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"ix-sympathomimetics": [p.medication(text="norepinephrine infusion"),
                                    p.medication(text="methylergonovine 0.2 mg")]}


@case("desmopressin (H01BA02) is not vasopressin; vasopressin H01BA01 is", "needs-review")
def _(p: PatientBuilder) -> Fires:
    p.medication("H01BA02", "desmopressin", system=ATC)
    p.medication(text="desmopressin acetate 0.1 mg")
    return {"ix-sympathomimetics": [p.medication("H01BA01", "vasopressin", system=ATC)]}


@case("phenylephrine eye drops are not systemic", "suitable", silent=("ix-sympathomimetics",))
def _(p: PatientBuilder) -> Fires:
    p.medication(text="phenylephrine 2.5% ophthalmic solution")
    return {}


@case("a planned MedicationRequest (intent plan) does not count", "suitable",
      silent=("ix-opioids",))
def _(p: PatientBuilder) -> Fires:
    p.medication("7804", "oxycodone", request=True, intent="plan")
    return {}


@case("atomoxetine, linezolid and memantine", "needs-review")
def _(p: PatientBuilder) -> Fires:
    return {"ix-psychostimulants": [p.medication(text="Strattera 40 mg")],
            "ix-maoi": [p.medication("190376", "linezolid", request=True)],
            "ix-nmda-antagonists": [p.medication(text="memantine 10 mg")]}


@case("memantine alone is a minor interaction (information)", "suitable")
def _(p: PatientBuilder) -> Fires:
    return {"ix-nmda-antagonists": [p.medication("N06DX01", "memantine", system=ATC)]}


@case("sertraline by RxNorm product code and name raises nothing", "suitable",
      silent=("ix-maoi", "ix-cns-depressants", "ix-nmda-antagonists"))
def _(p: PatientBuilder) -> Fires:
    p.medication("312940", "sertraline 50 MG Oral Tablet")
    p.medication(text="Zoloft 100 mg daily")
    return {}



@case("febrile convulsion and delirium are neither seizure disorder nor dementia", "suitable",
      silent=("info-seizure-disorder", "info-cognitive-impairment",
              "info-phq9-baseline-missing"))
def _(p: PatientBuilder) -> Fires:
    p.condition("R56.00", "Simple febrile convulsions", clinical="resolved")
    p.condition("F05", "Delirium due to known physiological condition", clinical="resolved")
    p.condition(text="Family history of dementia")
    return {}


@case("free-text abbreviations: 'AAA 4.5 cm' and 'Hx of CVA' count; 'r/o pregnancy' does not",
      "contraindicated", esketamine="contraindicated", silent=("pr-pregnancy",))
def _(p: PatientBuilder) -> Fires:
    aaa = p.condition(text="AAA 4.5 cm")
    cva = p.condition(text="Hx of CVA 2015")
    p.condition(text="r/o pregnancy")
    return {"ci-aneurysm": [aaa], "ci-prior-stroke": [cva], "pr-prior-stroke": [cva]}


@case("a relative's stroke (text or SNOMED family history) does not count", "suitable",
      silent=("ci-prior-stroke", "pr-prior-stroke"))
def _(p: PatientBuilder) -> Fires:
    p.condition(text="Mother had a stroke at 60")
    p.condition("429959009", "Family history of stroke", system=SNOMED)
    return {}
