"""The goals of ``make bench`` in one table: each benchmark records its goals as it measures them.

Every benchmark module calls :func:`record` for each goal it measures (the measured value, the
goal, met or missed, and a note); the rows go to ``BENCH_GOALS`` (a JSON-lines file the Makefile
names, one per ``make bench`` run) or, without it, to a file in the temporary directory. After the
last benchmark, ``python -m bench.goals`` prints them all side by side, in the order measured,
and ends with the count of goals met.

Goals are the performance issue's (12): CPU per screening, end to end against the floor, CDS
order-sign, one process under load, peers, population. The engine's own goals (evaluation
throughput, v2 no slower than v1) are recorded too.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Goal", "path", "read", "record", "table"]


@dataclass(frozen=True, slots=True)
class Goal:
    area: str
    """Which benchmark measured it."""
    measure: str
    value: str
    """The measured value, as printed (min / median / max where the figure is noisy)."""
    goal: str
    met: bool
    note: str = ""


def path() -> Path:
    named = os.environ.get("BENCH_GOALS")
    return Path(named) if named else Path(tempfile.gettempdir()) / "ketamine-bench-goals.jsonl"


def record(area: str, measure: str, value: str, goal: str, met: bool, note: str = "") -> Goal:
    """One goal measured: appended to the run's file and printed at once."""
    row = Goal(area, measure, value, goal, met, note)
    with path().open("a", encoding="utf-8") as out:
        out.write(json.dumps(asdict(row)) + "\n")
    print(f"goal: {measure}: {value} ({goal}: {'met' if met else 'MISSED'})", flush=True)
    return row


def read(source: Path | None = None) -> list[Goal]:
    source = source or path()
    if not source.exists():
        return []
    return [Goal(**json.loads(line)) for line in source.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def table(rows: list[Goal]) -> str:
    widths = [max([len(h), *(len(getattr(r, f)) for r in rows)])
              for h, f in (("area", "area"), ("measure", "measure"), ("measured", "value"),
                           ("goal", "goal"))]
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False))

    header = line(["area", "measure", "measured", "goal"]) + "  result"
    out = [header, "-" * len(header)]
    for r in rows:
        out.append(line([r.area, r.measure, r.value, r.goal]) + "  "
                   + ("met" if r.met else "MISSED") + (f"  ({r.note})" if r.note else ""))
    met = sum(r.met for r in rows)
    out.append(f"{met} of {len(rows)} goals met")
    return "\n".join(out)


def main() -> None:
    rows = read()
    if not rows:
        print(f"no goals recorded in {path()}", file=sys.stderr)
        raise SystemExit(1)
    print("\n=== make bench: every goal, one run ===")
    print(table(rows))


if __name__ == "__main__":
    main()
