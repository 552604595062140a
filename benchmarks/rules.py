"""The hub's business rules alone: ``broken_rule`` on each benchmark body, µs per call.

    python -m benchmarks.rules [--repeat 7] [--number 20000]

Run the file against another checkout to compare codes on the same machine and minute
(it imports only ``benchmarks.ingest`` and ``sync``, from wherever ``PYTHONPATH`` says):

    git worktree add /tmp/old COMMIT
    PYTHONPATH=/tmp/old python benchmarks/rules.py
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Sequence
from datetime import date, timedelta

from benchmarks.ingest import BODIES
from sync.envelopes import body_kind
from sync.validation import broken_rule

CITY = "620100"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rules", description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="runs; the fastest is shown")
    parser.add_argument("--number", type=int, default=20_000, help="calls per run")
    args = parser.parse_args(argv)
    today = date.today()
    day = (today - timedelta(days=1)).isoformat()
    for name, make in BODIES.items():
        body = make(CITY, 1, day)
        kind = body_kind(body)
        problem = broken_rule(kind, body, today=today)
        if problem is not None:  # a body the rules refuse would time the refusal's path
            raise SystemExit(f"{name}: the benchmark body breaks a rule: {problem}")
        runs = timeit.repeat(
            lambda: broken_rule(kind, body, today=today),  # noqa: B023 - used at once
            number=args.number,
            repeat=args.repeat,
        )
        best = min(runs) / args.number * 1e6
        print(f"rules/{name}: broken_rule {best:.2f} µs a body ({len(body.SerializeToString())} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
