"""The complaint category tree (投诉分类) and its time limits in working days.

The packaged default is a realistic telecom tree; a city may pass its own CSV with the same
columns: ``code,parent,name_zh,name_en,complaint_limit_workdays``. A child with an empty limit
inherits its parent's, so a tree can set limits once per branch of the tree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGED_FILE = "data/categories-telecom.csv"


def code_of(label: str) -> str:
    """The category code in ``label``: a code (``BILL.DISPUTE``), a path label as the
    consoles show it (``资费与计费 / 话费争议 / BILL.DISPUTE``) or a suggestion's category as a
    city sends it (the clerk's class, then the code: ``装机 / SVC.INSTALL``) — the part
    after the last " / "."""
    return label.rsplit(" / ", 1)[-1].strip()


class CategoryError(ValueError):
    """The category file is unusable; the message names the file, and the line where the
    fault is on one."""


class UnknownCategory(LookupError):
    """A category code that the tree does not have; ``code`` holds it."""

    def __init__(self, code: str) -> None:
        super().__init__(f"unknown category code {code!r}")
        self.code = code


@dataclass(frozen=True)
class Category:
    """One node of the tree; ``parent`` is ``None`` for a top-level category."""

    code: str
    parent: str | None
    name_zh: str
    name_en: str
    limit_workdays: int | None


class CategoryTree:
    """Categories by code, with inherited time limits."""

    def __init__(
        self,
        categories: dict[str, Category],
        source: str = "<memory>",
        lines: Mapping[str, int] | None = None,
    ) -> None:
        self._by_code = dict(categories)
        self.source = source
        self._lines = dict(lines or {})
        for category in self._by_code.values():
            if category.parent is not None and category.parent not in self._by_code:
                raise CategoryError(
                    f"{self._where(category.code)}: category {category.code} has unknown "
                    f"parent {category.parent}"
                )
        # Resolve every limit now so a cycle or a limitless root fails at load, not at the
        # first ticket of that category.
        for code in self._by_code:
            self.limit_for(code)

    def _where(self, code: str) -> str:
        """The source, and the line ``code`` was read from when it came from a file."""
        line = self._lines.get(code)
        return f"{self.source} line {line}" if line else self.source

    @classmethod
    def load(cls, path: Path | None = None) -> CategoryTree:
        """Load a category CSV; ``None`` means the packaged telecom default."""
        if path is None:
            text = resources.files("sync").joinpath(PACKAGED_FILE).read_text("utf-8")
            source = "packaged categories-telecom.csv"
        else:
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise CategoryError(f"cannot read categories {path}: {exc.strerror}") from exc
            source = str(path)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                line_no = raw.count(b"\n", 0, exc.start) + 1
                raise CategoryError(
                    f"{source} line {line_no}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                    "save the file as UTF-8"
                ) from None
        categories: dict[str, Category] = {}
        lines: dict[str, int] = {}
        reader = csv.DictReader(io.StringIO(text))
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # a NUL byte, an unterminated quote…
                raise CategoryError(f"{source} line {reader.line_num}: {exc}") from None
            line_no = reader.line_num
            code = (row.get("code") or "").strip()
            if not code:
                raise CategoryError(f"{source} line {line_no}: empty category code")
            if code in categories:
                raise CategoryError(f"{source} line {line_no}: category {code} appears twice")
            raw_limit = (row.get("complaint_limit_workdays") or "").strip()
            limit: int | None = None
            if raw_limit:
                if not raw_limit.isdigit() or int(raw_limit) < 1:
                    raise CategoryError(
                        f"{source} line {line_no}: limit {raw_limit!r} of {code} is not a "
                        "positive whole number of working days"
                    )
                limit = int(raw_limit)
            categories[code] = Category(
                code=code,
                parent=(row.get("parent") or "").strip() or None,
                name_zh=(row.get("name_zh") or "").strip(),
                name_en=(row.get("name_en") or "").strip(),
                limit_workdays=limit,
            )
            lines[code] = line_no
        return cls(categories, source, lines)

    def get(self, code: str) -> Category:
        """The category with ``code``; raises :class:`UnknownCategory` if there is none."""
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownCategory(code) from None

    __getitem__ = get

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def children(self, code: str) -> list[Category]:
        """Direct children of ``code`` (which must exist)."""
        self.get(code)
        return [c for c in self._by_code.values() if c.parent == code]

    def limit_for(self, code: str) -> int:
        """The complaint time limit of ``code`` in working days, inherited up the tree."""
        seen: list[str] = []
        category = self.get(code)
        while category.limit_workdays is None:
            seen.append(category.code)
            if category.parent is None:
                raise CategoryError(
                    f"{self._where(code)}: category {code} has no time limit and no ancestor "
                    "with one"
                )
            if category.parent in seen:
                raise CategoryError(
                    f"{self._where(code)}: category parents form a cycle: {' -> '.join(seen)}"
                )
            category = self.get(category.parent)
        return category.limit_workdays
