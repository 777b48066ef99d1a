"""Screening-engine benchmark: each pipeline stage on its own, per patient size, v1 beside v2.

Run: ``make bench-engine`` (or ``.venv/bin/python -m bench.engine``). Prints two tables:

- stages (ruleset v2): decode (JSON bytes -> the read model, ``parse_bundle``), normalise
  (resources -> plain facts, ``normalise``), evaluate (facts -> findings, verdicts and
  eligibility, ``evaluate``);
- evaluation, ruleset v1 beside v2: min / median / max CPU ms per patient over the rounds of one
  run, and v2's median as a multiple of v1's.

Figures are CPU time per patient (``time.process_time``), one core. Goals: evaluation >= 1,000
patients/s at 500 records, and no slowdown of evaluation from v1 to v2 at 500 records. Both
columns run on the same (current) engine, so v2's extra rules and its eligibility answer show
as the difference.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench import goals
from service.fhir.bundle import parse_bundle
from service.screening.matching import Matcher, matcher_for
from service.screening.normalise import normalise
from service.screening.rules import evaluate
from tests.builders import AS_OF, SNOMED, PatientBuilder

SIZES = (50, 500, 5000)
GOAL_PATIENTS_PER_S = 1000

CONDITIONS = [("F33.1", "Major depressive disorder, recurrent, moderate"),
              ("J45.909", "Unspecified asthma, uncomplicated"),
              ("E11.9", "Type 2 diabetes mellitus without complications"),
              ("I10", "Essential (primary) hypertension"),
              ("F41.1", "Generalized anxiety disorder"),
              ("K21.9", "Gastro-esophageal reflux disease without esophagitis")]
SNOMED_CONDITIONS = [("370143000", "Major depression disorder"),
                     ("444814009", "Viral sinusitis (disorder)"),
                     ("38341003", "Hypertensive disorder"),
                     ("49436004", "Atrial Fibrillation")]
MEDICATIONS = [("36437", "sertraline 50 MG Oral Tablet"), ("161", "acetaminophen 500 MG"),
               ("6809", "metformin 500 MG"), ("29046", "lisinopril 10 MG"),
               ("7646", "omeprazole 20 MG"), ("1049221", "Acetaminophen 325 MG / oxyCODONE "
                                                        "Hydrochloride 5 MG Oral Tablet"),
               ("39786", "venlafaxine 75 MG")]


def patient(records: int, seed: int) -> dict[str, Any]:
    """A synthetic record: 70% blood pressure over 400 days, then conditions, drugs, allergies."""
    rng = random.Random(seed)
    p = PatientBuilder(f"bench{seed}", normal_vitals=True)
    while len(p.resources) < records:
        roll = rng.random()
        if roll < 0.70:
            p.bp(rng.randint(100, 150), rng.randint(60, 95), days_ago=rng.uniform(0, 400))
        elif roll < 0.80:
            p.condition(*rng.choice(CONDITIONS), clinical=rng.choice(["active", "resolved"]))
        elif roll < 0.85:
            p.condition(*rng.choice(SNOMED_CONDITIONS), system=SNOMED,
                        onset=f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-15")
        elif roll < 0.97:
            day = f"20{rng.randint(20, 25)}-0{rng.randint(1, 9)}-01"
            p.medication(*rng.choice(MEDICATIONS), status=rng.choice(["active", "completed"]),
                         start=day, period_end=rng.choice([None, "2026-01-01"]))
        else:
            p.allergy("7980", "penicillin G")
    return p.bundle()


def cpu_per_call(fn: Callable[[], object], calls: int, rounds: int = 5) -> list[float]:
    """CPU seconds per call for each of ``rounds`` rounds of ``calls`` calls."""
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - start) / calls)
    return times


def main() -> None:
    v1, v2 = matcher_for("v1"), matcher_for("v2")
    safety = safety_only(v2)
    print(f"Screening engine benchmark: CPU ms per patient, one core ({os.cpu_count()} here)")
    header = (f"{'records':>8} {'JSON kB':>8} {'decode':>8} {'normalise':>10} {'evaluate':>9} "
              f"{'eval pat/s':>11} {'eval vs goal':>13}")
    print("Stages, ruleset v2 (best of 5 rounds):")
    print(header)
    print("-" * len(header))
    evaluations: dict[int, tuple[list[float], list[float], list[float]]] = {}
    for size in SIZES:
        body = json.dumps(patient(size, seed=size)).encode()
        calls = max(2, 20_000 // size)
        raw = parse_bundle(body, "bench")
        facts = normalise(raw, v2.terminology)
        parse_s = min(cpu_per_call(lambda: parse_bundle(body, "bench"),  # noqa: B023
                                   max(1, calls // 10)))
        norm_s = min(cpu_per_call(lambda: normalise(raw, v2.terminology), calls))  # noqa: B023
        # v1 and v2 rounds interleave, so machine load falls on both alike.
        e1: list[float] = []
        e2: list[float] = []
        es: list[float] = []
        for _ in range(7):
            e1 += cpu_per_call(lambda: evaluate(facts, AS_OF, v1), calls, 1)  # noqa: B023
            e2 += cpu_per_call(lambda: evaluate(facts, AS_OF, v2), calls, 1)  # noqa: B023
            es += cpu_per_call(lambda: evaluate(facts, AS_OF, safety), calls, 1)  # noqa: B023
        evaluations[size] = (e1, e2, es)
        best = min(e2)
        print(f"{size:>8} {len(body) / 1024:>8.0f} {parse_s * 1e3:>8.2f} {norm_s * 1e3:>10.3f} "
              f"{best * 1e3:>9.3f} {1 / best:>11.0f} {(1 / best) / GOAL_PATIENTS_PER_S:>12.2f}x")
    print()
    print("Evaluation, ruleset v1 beside v2, and v2's safety rules without its eligibility answer "
          "(7 interleaved rounds; min / median / max ms):")
    head = f"{'records':>8} {'v1 min':>8} {'v1 med':>8} {'v1 max':>8} {'v2 min':>8} " \
           f"{'v2 med':>8} {'v2 max':>8} {'v2/v1 med':>10} {'safety med':>11} {'safety/v1':>10}"
    print(head)
    print("-" * len(head))
    for size, (e1, e2, es) in evaluations.items():
        m1, m2, ms = statistics.median(e1), statistics.median(e2), statistics.median(es)
        print(f"{size:>8} {min(e1) * 1e3:>8.3f} {m1 * 1e3:>8.3f} {max(e1) * 1e3:>8.3f} "
              f"{min(e2) * 1e3:>8.3f} {m2 * 1e3:>8.3f} {max(e2) * 1e3:>8.3f} {m2 / m1:>9.2f}x "
              f"{ms * 1e3:>11.3f} {ms / m1:>9.2f}x")
    print(f"goals: evaluation >= {GOAL_PATIENTS_PER_S} patients/s at 500 records; v2/v1 <= 1.00 "
          "at 500 records.")
    e1, e2, es = evaluations[500]
    m1, m2, ms = statistics.median(e1), statistics.median(e2), statistics.median(es)
    rate = 1 / m2
    goals.record("engine", "evaluation alone, 500 records (median)", f"{rate:,.0f} patients/s",
                 f">= {GOAL_PATIENTS_PER_S:,} patients/s", rate >= GOAL_PATIENTS_PER_S)
    goals.record("engine", "evaluation v2 / v1, 500 records (median)", f"{m2 / m1:.2f}x",
                 "<= 1.00x", m2 <= m1,
                 f"v2's safety rules alone {ms / m1:.2f}x; the rest is eligibility, "
                 f"{(m2 - ms) * 1e3:.3f} ms, an answer v1 does not give")


def safety_only(matcher: Matcher) -> Matcher:
    """The same ruleset without its eligibility section: the safety rules' share of the cost."""
    maps = matcher.maps
    return Matcher(dataclasses.replace(
        maps, ruleset=maps.ruleset.model_copy(update={"eligibility": None})))


if __name__ == "__main__":
    main()
