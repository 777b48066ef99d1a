"""Where the CPU of one 500-record screening goes: cProfile of parse + screen, today and with the
read-side projection in place of fhir.resources (a preview until it is wired in).

Run: ``.venv/bin/python -m bench.profile_screening [ROWS]``. Profiles ``REPEATS`` screenings of
the bench.engine 500-record patient (JSON bytes in, contract out) and prints the functions with
the most time of their own, then the pipeline's stages by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable

from bench.engine import patient
from service.fhir import bundle as bundle_module
from service.fhir.bundle import parse_bundle
from service.fhir.projection import decode_resource
from service.fhir.read_bundle import decode_bundle
from service.screening.engine import screen
from service.screening.matching import default_matcher
from service.screening.normalise import normalise
from service.screening.rules import evaluate
from tests.builders import AS_OF

REPEATS = 20
STAGES = ("parse_bundle", "parse_resource", "decode_resource", "model_validate", "screen",
          "normalise", "evaluate", "as_contract", "loads")


def one(body: bytes) -> None:
    raw = parse_bundle(json.loads(body), "bench")
    json.dumps(screen(raw, AS_OF).as_contract())


def profile(label: str, body: bytes, rows: int) -> None:
    one(body)  # warm caches (terminology, concept memo) as a running service has them
    began = time.process_time()
    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
    profiler.enable()
    for _ in range(REPEATS):
        one(body)
    profiler.disable()
    per = (time.process_time() - began) / REPEATS * 1000
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(rows)
    print(f"\n=== {label}: {per:.1f} ms CPU per screening under the profiler "
          f"({REPEATS} screenings) ===")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    print(f"--- cumulative ms per screening, by stage ({label})")
    for key, (_, calls, _, cumulative, _) in sorted(stats.stats.items(),  # type: ignore[attr-defined]
                                                    key=lambda kv: -kv[1][3]):
        if key[2] in STAGES:
            print(f"  {key[2]:<18} {cumulative / REPEATS * 1000:>8.2f} ms  "
                  f"({calls // REPEATS} calls)  {key[0].split('site-packages/')[-1]}:{key[1]}")


def best_ms(fn: Callable[[], object], rounds: int = 30) -> float:
    """CPU ms per call without the profiler (best of ``rounds``: the profiler inflates Python-
    heavy code several times over, so stage shares come from here)."""
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        fn()
        best = min(best, time.process_time() - began)
    return best * 1000


def stages(body: bytes) -> None:
    matcher = default_matcher()
    data = json.loads(body)
    raw_today = parse_bundle(data, "bench")
    facts = normalise(raw_today, matcher.terminology)
    result = evaluate(facts, AS_OF, matcher)
    decoded = decode_bundle(body, "bench")
    raw_projected = bundle_module._collect([(e.fullUrl, e.resource) for e in decoded.entries],
                                           [], "bench", None)
    rows = [
        ("json.loads (the floor)", best_ms(lambda: json.loads(body))),
        ("parse_bundle, fhir.resources (today)", best_ms(lambda: parse_bundle(data, "bench"), 5)),
        ("decode_bundle, projection (bytes in)", best_ms(lambda: decode_bundle(body, "bench"))),
        ("  + assembling RawPatientData (_collect)", best_ms(
            lambda: bundle_module._collect([(e.fullUrl, e.resource) for e in decoded.entries],
                                           [], "bench", None))),
        ("normalise (fhir.resources models)",
         best_ms(lambda: normalise(raw_today, matcher.terminology))),
        ("normalise (projected resources)",
         best_ms(lambda: normalise(raw_projected, matcher.terminology))),
        ("evaluate", best_ms(lambda: evaluate(facts, AS_OF, matcher))),
        ("as_contract + json.dumps", best_ms(lambda: json.dumps(result.as_contract()))),
    ]
    print("\n=== stages of one 500-record screening, CPU ms, best of 30, no profiler ===")
    for name, ms in rows:
        print(f"  {name:<44} {ms:>8.2f}")


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 25
    body = json.dumps(patient(500, seed=500)).encode()
    stages(body)
    profile("today (fhir.resources)", body, rows)
    before = bundle_module.parse_resource
    bundle_module.parse_resource = decode_resource  # type: ignore[assignment]
    try:
        profile("projection (preview)", body, rows)
    finally:
        bundle_module.parse_resource = before


if __name__ == "__main__":
    main()
