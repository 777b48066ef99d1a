"""Where the CPU of one 500-record screening goes: each stage timed, then cProfile of the whole.

Run: ``.venv/bin/python -m bench.profile_screening [ROWS]`` (also part of ``make bench``). The
500-record patient of bench.engine, as JSON bytes, goes through what ``$evaluate`` does with a
body: decode (``parse_bundle`` on the bytes: ``decode_bundle`` into the read model, then the
patient's records assembled), screen (normalise, evaluate), the contract encoded as JSON.

- stages: CPU ms per call, best of ``BEST_OF`` (no profiler: it inflates Python-heavy stages
  several times over), beside ``json.loads`` on the same bytes and, for the record, what
  fhir.resources took for the decode before the projection (tests/fhir/oracle.py);
- :func:`cpu_per_screening`: min / median / max CPU ms of the whole, and its ratio to
  ``json.loads`` (the goals: <= 5 ms, <= 2x);
- the profile: functions with the most time of their own, under cProfile (CPU clock).
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Callable

import msgspec

from bench import goals
from bench.engine import patient
from service.fhir.bundle import collect, parse_bundle
from service.fhir.read_bundle import decode_bundle
from service.screening.engine import screen
from service.screening.matching import default_matcher
from service.screening.normalise import normalise
from service.screening.rules import evaluate
from tests.builders import AS_OF
from tests.fhir import oracle

BEST_OF = 30
REPEATS = 60
"""Screenings timed for the min / median / max."""
PROFILED = 20
GOAL_MS = 5.0
GOAL_RATIO = 2.0


def body_of(records: int = 500) -> bytes:
    return json.dumps(patient(records, seed=records)).encode()


def one(body: bytes) -> bytes:
    """What ``$evaluate`` does with a body, without HTTP: bytes in, the contract's JSON out."""
    result = screen(parse_bundle(body, "bench"), AS_OF)
    return msgspec.json.encode(result.as_contract())


def best_ms(fn: Callable[[], object], rounds: int = BEST_OF) -> float:
    best = float("inf")
    for _ in range(rounds):
        began = time.process_time()
        fn()
        best = min(best, time.process_time() - began)
    return best * 1000


def samples_ms(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        began = time.process_time()
        fn()
        out.append((time.process_time() - began) * 1000)
    return out


def cpu_per_screening(body: bytes) -> tuple[list[float], list[float]]:
    """CPU ms of each of REPEATS screenings, and of json.loads on the same bytes, interleaved
    (so that machine load falls on both alike)."""
    one(body)  # warm caches (terminology, concept memo) as a running service has them
    ours: list[float] = []
    floor: list[float] = []
    for _ in range(REPEATS):
        ours += samples_ms(lambda: one(body), 1)
        floor += samples_ms(lambda: json.loads(body), 1)
    return ours, floor


def record_goals(ours: list[float], floor: list[float]) -> None:
    median, floor_median = statistics.median(ours), statistics.median(floor)
    spread = f"{min(ours):.2f} / {median:.2f} / {max(ours):.2f} ms"
    goals.record("cpu", "CPU per screening, 500 records (min/median/max)", spread,
                 f"median <= {GOAL_MS:g} ms", median <= GOAL_MS)
    ratio = median / floor_median
    goals.record("cpu", "  the same, as a multiple of json.loads on the same bytes",
                 f"{ratio:.2f}x (json.loads median {floor_median:.2f} ms)",
                 f"<= {GOAL_RATIO:g}x", ratio <= GOAL_RATIO)


def stages(body: bytes) -> None:
    matcher = default_matcher()
    decoded = decode_bundle(body, "bench")
    raw = parse_bundle(body, "bench")
    facts = normalise(raw, matcher.terminology)
    result = evaluate(facts, AS_OF, matcher)
    pairs = [(e.fullUrl, e.resource) for e in decoded.entries]
    rows = [
        ("json.loads (the floor)", best_ms(lambda: json.loads(body))),
        ("decode_bundle: bytes -> read model", best_ms(lambda: decode_bundle(body, "bench"))),
        ("collect: the patient's records", best_ms(
            lambda: collect(list(pairs), [], "bench", None))),
        ("normalise", best_ms(lambda: normalise(raw, matcher.terminology))),
        ("evaluate", best_ms(lambda: evaluate(facts, AS_OF, matcher))),
        ("contract + msgspec encode", best_ms(
            lambda: msgspec.json.encode(result.as_contract()))),
        ("all of it, fresh each time (one())", best_ms(lambda: one(body))),
        ("before: fhir.resources decode alone", best_ms(
            lambda: oracle.parse_bundle(json.loads(body), "bench"), 3)),
    ]
    print(f"\n=== stages of one 500-record screening ({len(body) / 1024:.0f} kB), CPU ms, "
          f"best of {BEST_OF}, no profiler ===")
    for name, ms in rows:
        print(f"  {name:<44} {ms:>8.2f}")


def profile(body: bytes, rows: int) -> None:
    one(body)
    began = time.process_time()
    profiler = cProfile.Profile(time.process_time)  # CPU, not wall: the machine is shared
    profiler.enable()
    for _ in range(PROFILED):
        one(body)
    profiler.disable()
    per = (time.process_time() - began) / PROFILED * 1000
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(rows)
    print(f"\n=== cProfile: {per:.1f} ms CPU per screening under the profiler "
          f"({PROFILED} screenings; own time, ms per screening = tottime / {PROFILED}) ===")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    body = body_of()
    stages(body)
    ours, floor = cpu_per_screening(body)
    print(f"\nCPU per screening: min {min(ours):.2f}, median {statistics.median(ours):.2f}, "
          f"max {max(ours):.2f} ms; json.loads median {statistics.median(floor):.2f} ms "
          f"({REPEATS} each, interleaved)")
    record_goals(ours, floor)
    profile(body, rows)


if __name__ == "__main__":
    main()
