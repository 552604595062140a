"""The federation's roster: which cities exist, their codes and names.

The roster is configuration, not code: the packaged default is Gansu's 14 prefecture-level
divisions; another province passes its own CSV (same columns) with ``--roster``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

CODE_LENGTH = 6


@dataclass(frozen=True)
class City:
    code: str
    name_zh: str
    name_en: str
    population: int


class RosterError(ValueError):
    """The roster file is unusable; the message names the file and line."""


def is_city_code(code: str) -> bool:
    return len(code) == CODE_LENGTH and code.isdigit()


def load_roster(path: Path | None = None) -> tuple[City, ...]:
    """Load a roster CSV (``code,name_zh,name_en,kind,population_2020``), default: Gansu."""
    if path is None:
        text = resources.files("sync").joinpath("data/roster-gansu.csv").read_text("utf-8")
        source = "packaged roster-gansu.csv"
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise RosterError(f"cannot read roster {path}: {exc.strerror}") from exc
        source = str(path)
    cities: list[City] = []
    seen: set[str] = set()
    for line_no, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        code = (row.get("code") or "").strip()
        if not is_city_code(code):
            raise RosterError(f"{source} line {line_no}: city code {code!r} is not six digits")
        if code in seen:
            raise RosterError(f"{source} line {line_no}: city code {code} appears twice")
        seen.add(code)
        population = (row.get("population_2020") or row.get("population") or "0").strip()
        cities.append(
            City(
                code=code,
                name_zh=(row.get("name_zh") or "").strip(),
                name_en=(row.get("name_en") or "").strip(),
                population=int(population) if population.isdigit() else 0,
            )
        )
    if not cities:
        raise RosterError(f"{source}: the roster lists no city")
    return tuple(cities)
