"""Screening-engine benchmark: each pipeline stage on its own, per patient size.

Run: ``make bench-engine`` (or ``.venv/bin/python -m bench.engine``). Prints one table:

- parse: JSON text -> fhir.resources R4B models (validation included), ``parse_bundle``;
- normalise: models -> plain facts with codes mapped (``normalise``);
- evaluate: facts -> findings and verdict, the pure rules (``evaluate``);
- n+e: normalise and evaluate together (what ``screen`` does after parsing).

Figures are CPU time per patient (``time.process_time``), best of several rounds, one core.
The engine issue's goal is evaluation >= 1,000 patients/s at 500 records.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from typing import Any

from service.fhir.bundle import parse_bundle
from service.screening.matching import default_matcher
from service.screening.normalise import normalise
from service.screening.rules import evaluate
from tests.builders import AS_OF, PatientBuilder

SIZES = (50, 500, 5000)
GOAL_PATIENTS_PER_S = 1000

CONDITIONS = [("F33.1", "Major depressive disorder, recurrent, moderate"),
              ("J45.909", "Unspecified asthma, uncomplicated"),
              ("E11.9", "Type 2 diabetes mellitus without complications"),
              ("I10", "Essential (primary) hypertension"),
              ("F41.1", "Generalized anxiety disorder"),
              ("K21.9", "Gastro-esophageal reflux disease without esophagitis")]
MEDICATIONS = [("36437", "sertraline 50 MG Oral Tablet"), ("161", "acetaminophen 500 MG"),
               ("6809", "metformin 500 MG"), ("29046", "lisinopril 10 MG"),
               ("7646", "omeprazole 20 MG")]


def patient(records: int, seed: int) -> dict[str, Any]:
    """A synthetic record: 70% blood pressure over 400 days, then conditions, drugs, allergies."""
    rng = random.Random(seed)
    p = PatientBuilder(f"bench{seed}", normal_vitals=True)
    while len(p.resources) < records:
        roll = rng.random()
        if roll < 0.70:
            p.bp(rng.randint(100, 150), rng.randint(60, 95), days_ago=rng.uniform(0, 400))
        elif roll < 0.85:
            p.condition(*rng.choice(CONDITIONS), clinical=rng.choice(["active", "resolved"]))
        elif roll < 0.97:
            p.medication(*rng.choice(MEDICATIONS), status=rng.choice(["active", "completed"]))
        else:
            p.allergy("7980", "penicillin G")
    return p.bundle()


def cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    """Best of five rounds of ``calls`` calls, CPU seconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.process_time() - start) / calls)
    return best


def main() -> None:
    matcher = default_matcher()
    terminology = matcher.terminology
    print(f"Screening engine benchmark: CPU ms per patient, best of 5 rounds "
          f"({os.cpu_count()} cores here; one is used)")
    header = (f"{'records':>8} {'JSON kB':>8} {'parse':>8} {'normalise':>10} {'evaluate':>9} "
              f"{'n+e':>7} {'eval pat/s':>11} {'n+e pat/s':>10} {'eval vs goal':>13}")
    print(header)
    print("-" * len(header))
    for size in SIZES:
        body = json.dumps(patient(size, seed=size))
        calls = max(2, 20_000 // size)
        raw = parse_bundle(json.loads(body), "bench")
        facts = normalise(raw, terminology)
        parse_s = cpu_per_call(lambda: parse_bundle(json.loads(body), "bench"),  # noqa: B023
                               max(1, calls // 10))
        norm_s = cpu_per_call(lambda: normalise(raw, terminology), calls)  # noqa: B023
        eval_s = cpu_per_call(lambda: evaluate(facts, AS_OF, matcher), calls)  # noqa: B023
        both = norm_s + eval_s
        print(f"{size:>8} {len(body) / 1024:>8.0f} {parse_s * 1e3:>8.2f} {norm_s * 1e3:>10.3f} "
              f"{eval_s * 1e3:>9.3f} {both * 1e3:>7.3f} {1 / eval_s:>11.0f} {1 / both:>10.0f} "
              f"{(1 / eval_s) / GOAL_PATIENTS_PER_S:>12.2f}x")
    print(f"goal: evaluation >= {GOAL_PATIENTS_PER_S} patients/s at 500 records. Parsing is "
          "fhir.resources validation of every resource;")
    print("normalise maps codes; both run once per read, evaluate once per screen.")


if __name__ == "__main__":
    main()
