"""``fedsync hub`` with parts of its ingest replaced by no-ops: attribution only.

    python -m benchmarks.attributed_hub rules,figures hub --listen ... (the hub's own flags)

``benchmarks.ingest --without PART`` spawns its statistics-report hub through this module to
see what the business rules and the landing of report figures cost end to end (with
``benchmarks.ingest_profile --without`` measuring the same in process). Never a product
path: such a hub accepts every body and lands no figures.
"""

from __future__ import annotations

import sys

from benchmarks.ingest_profile import skip_for_attribution


def main(argv: list[str]) -> int:
    parts = [part for part in argv[0].split(",") if part]
    unknown = set(parts) - {"rules", "figures"}
    if unknown:
        print(f"attributed_hub: unknown part(s) {sorted(unknown)}; rules, figures", file=sys.stderr)
        return 2
    skip_for_attribution(parts)
    from sync.cli import main as cli_main

    return cli_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
