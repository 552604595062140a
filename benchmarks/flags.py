"""Command lines of the processes a benchmark starts: its own flags, then the ones given on
its command line (``--hub-arg``/``--city-arg``), which replace a flag of its own they name
(``fedsync`` refuses an option given twice)."""

from __future__ import annotations

from collections.abc import Sequence


def with_extra(flags: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``flags`` (``--name value``, ``--name=value`` or ``--switch``) without those ``extra``
    names, then ``extra``."""
    named = {token.split("=", 1)[0] for token in extra if token.startswith("--")}
    kept: list[str] = []
    i = 0
    while i < len(flags):
        token = flags[i]
        takes_value = "=" not in token and i + 1 < len(flags) and not flags[i + 1].startswith("--")
        width = 2 if takes_value else 1
        if token.split("=", 1)[0] not in named:
            kept += flags[i : i + width]
        i += width
    return [*kept, *extra]
