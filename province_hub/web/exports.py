"""A table as the file a province sends upward: CSV (UTF-8 with a byte-order mark, so Excel
reads the Chinese) or XLSX (openpyxl). Both start with the table's title, its period and
when the file was generated, then the Chinese header row and the rows; numbers stay numbers
(rates as fractions, shown as percentages in Excel)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from starlette.responses import Response

from province_hub.web.tables import Table, cell_export
from sync.zones import zone_label

Format = Literal["csv", "xlsx"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


#: What a spreadsheet takes for the start of a formula (``=``, ``+``, ``-``, ``@``; tab and
#: carriage return too): text from a city (a suggestion, a finding, a category) beginning so
#: must stay text, or opening the export would run it (``=HYPERLINK(…)``, DDE).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formula_like(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 1 and value.startswith(_FORMULA_START)


def _csv_text(value: Any) -> Any:
    """A CSV cell: text a spreadsheet would take for a formula gets the apostrophe that
    makes it text (the CSV has no other way to say so)."""
    if value is None:
        return ""
    return "'" + value if _formula_like(value) else value


def _xlsx_text(value: Any) -> Any:
    """An XLSX cell: the control characters no worksheet can hold (a record stored before
    the hub refused them in a city's text) written as ``\\xNN``, as a terminal shows them,
    rather than failing the whole export."""
    if not isinstance(value, str):
        return value
    return ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def _generated(moment: datetime) -> str:
    """When the file was made, on the federation's clock and naming it as every time a
    person reads at the hub does (``2026-12-05 10:00:00 北京时间 UTC+8``; ``CST`` said
    nothing a reader could be sure of: it is also a North American zone)."""
    zone = getattr(moment.tzinfo, "key", None)
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{shown} {zone_label(zone, 'zh', moment)}" if zone else f"{shown} {moment:%Z}".strip()


def _preamble(table: Table, generated_at: datetime) -> list[list[Any]]:
    return [
        ["报表", table.title_zh],
        ["统计周期", table.period or "-"],
        ["生成时间", _generated(generated_at)],
    ]


def _body(table: Table) -> list[list[Any]]:
    rows = [[c.zh for c in table.columns]]
    for row in table.rows:
        rows.append([cell_export(c, row.get(c.key)) for c in table.columns])
    return rows


def to_csv(table: Table, generated_at: datetime) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(_preamble(table, generated_at))
    writer.writerow([])
    writer.writerows([_csv_text(v) for v in r] for r in _body(table))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table, generated_at: datetime) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    # Sheet titles: at most 31 characters, none of []:*?/\ .
    sheet.title = "".join(ch for ch in table.title_zh if ch not in "[]:*?/\\")[:31] or "data"
    for r in _preamble(table, generated_at):
        sheet.append(r)
    sheet.append([])
    header, *rows = _body(table)
    sheet.append(header)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for r in rows:
        sheet.append([_xlsx_text(v) for v in r])
        for column, cell in zip(table.columns, sheet[sheet.max_row], strict=True):
            if _formula_like(cell.value):
                cell.data_type = "s"  # the text as it is, never a formula
            elif column.kind == "rate" and cell.value is not None:
                cell.number_format = "0.0%"
            elif column.kind in ("yuan", "float") and cell.value is not None:
                cell.number_format = "0.00"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def render(table: Table, fmt: Format, generated_at: datetime) -> bytes:
    return to_csv(table, generated_at) if fmt == "csv" else to_xlsx(table, generated_at)


def responses(description: str) -> dict[int | str, dict[str, Any]]:
    """An export route's documented answer (OpenAPI): the file, CSV or XLSX."""
    return {
        200: {
            "content": {MEDIA_TYPES["csv"]: {}, MEDIA_TYPES["xlsx"]: {}},
            "description": description,
        }
    }


def attachment(table: Table, fmt: Format, generated_at: datetime) -> Response:
    """``table`` as a file to download, named by the table and the period it shows (a table
    of the present moment by the day of ``generated_at``, the hub's local time)."""
    day = table.file_period or generated_at.date().isoformat()
    filename = f"{table.name}-{day}.{fmt}"
    return Response(
        render(table, fmt, generated_at),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
