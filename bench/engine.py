"""Screening-engine benchmark: parse vs normalise+evaluate, per patient size.

Run: ``make bench-engine`` (or ``.venv/bin/python -m bench.engine``). Prints a table; the goal
from the engine issue is evaluation >= 1,000 patients/s at 500 records on one core.
"Cold" clears the matcher's memo before every patient (every free text seen for the first time);
"warm" keeps it, as a long-running service does once common drugs and diagnoses repeat.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from service.fhir.bundle import parse_bundle
from service.screening.engine import screen
from service.screening.matching import default_matcher
from service.screening.normalise import normalise
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


def per_call(fn: Callable[[], object], budget_s: float = 1.5) -> tuple[float, int]:
    """Median seconds per call over repeated rounds (at least 5 calls)."""
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < 5 or time.perf_counter() - start < budget_s:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
        if len(samples) >= 2000:
            break
    return statistics.median(samples), len(samples)


def main() -> None:
    matcher = default_matcher()
    print("Screening engine benchmark (one core, median of repeated runs)")
    header = (f"{'records':>8} {'bytes':>9} {'parse ms':>9} {'norm ms':>8} {'eval cold':>10} "
              f"{'eval warm':>10} {'pat/s cold':>11} {'pat/s warm':>11} {'vs goal':>8}")
    print(header)
    print("-" * len(header))
    for size in SIZES:
        bundle = patient(size, seed=size)
        body = json.dumps(bundle)
        parse_s, _ = per_call(lambda body=body: parse_bundle(json.loads(body), "bench"))  # type: ignore[misc]
        raw = parse_bundle(json.loads(body), "bench")
        norm_s, _ = per_call(lambda raw=raw: normalise(raw, matcher.terminology))  # type: ignore[misc]

        def cold(raw: Any = raw) -> None:
            matcher._cache.clear()
            screen(raw, AS_OF, matcher=matcher)

        cold_s, _ = per_call(cold)
        warm_s, _ = per_call(lambda raw=raw: screen(raw, AS_OF, matcher=matcher))  # type: ignore[misc]
        ratio = (1 / warm_s) / GOAL_PATIENTS_PER_S
        print(f"{size:>8} {len(body):>9} {parse_s * 1e3:>9.2f} {norm_s * 1e3:>8.2f} "
              f"{cold_s * 1e3:>10.3f} {warm_s * 1e3:>10.3f} {1 / cold_s:>11.0f} "
              f"{1 / warm_s:>11.0f} {ratio:>7.2f}x")
    print("eval = normalise + rules + verdict (what the engine issue calls evaluation);")
    print(f"goal: >= {GOAL_PATIENTS_PER_S} patients/s at 500 records; 'vs goal' uses warm.")


if __name__ == "__main__":
    main()
