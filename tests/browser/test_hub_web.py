"""The supervisor web in a real Chromium against a real uvicorn over a hub store filled
through the ingest service: log in, the overview shows the 14 cities and the pushed
figures, a trend chart draws its points, the comparison sorts, CSV and XLSX downloads read
back (openpyxl) with the same numbers, the language switches."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from sync.db import make_engine
from tests.conftest import serving
from tests.hub_web_support import (
    CODES,
    NOVEMBER,
    PASSWORD,
    SILENT,
    expected_complaints,
    fill,
    web_app,
)


@pytest.fixture
def hub_url(tmp_path: Path) -> Iterator[str]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}")
    fill(engine)
    with serving(web_app(engine)) as url:
        yield url
    engine.dispose()


def _cell(page: Any, table: str, city: str, key: str) -> str:
    text: str = page.locator(
        f"#tbl-{table} tr[data-city='{city}'] td[data-key='{key}']"
    ).inner_text()
    return text.strip()


def _read_download(download: Any) -> bytes:
    path = download.path()
    assert path is not None
    return Path(path).read_bytes()


def test_supervisor_overview_trends_comparison_exports_language(page: Any, hub_url: str) -> None:
    page.goto(f"{hub_url}/overview")
    page.wait_for_url(re.compile(r".*/login\?next=.*"))
    page.fill("#staff_id", "supervisor")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/overview$"))

    # The overview: November (the latest month that has ended), every roster city.
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("#tbl-figures tbody tr[data-city]").count() == 14
    for code in CODES:
        shown = _cell(page, "figures", code, "complaints_received")
        assert shown == ("-" if code == SILENT else str(expected_complaints(code, NOVEMBER)))
    assert "甘南" in page.locator("#missing-reports").inner_text()
    assert page.locator("#reporting strong").inner_text() == "13"

    # A trend chart draws the province line with points where reports exist.
    page.goto(f"{hub_url}/trends?cities={CODES[1]}")
    chart = page.locator("#chart-in_time_closure_rate[data-rendered]")
    chart.wait_for()
    assert chart.get_attribute("data-rendered") == "2"  # October and November
    option = page.evaluate(
        "() => echarts.getInstanceByDom(document.getElementById('chart-in_time_closure_rate'))"
        ".getOption().series.map(s => ({name: s.name, data: s.data}))"
    )
    assert [s["name"] for s in option] == ["全省", "嘉峪关市"]
    assert len(option[0]["data"]) == 12 and option[0]["data"][:10] == [None] * 10
    assert all(isinstance(v, int | float) and 0 < v <= 100 for v in option[0]["data"][10:])
    # Drawn, not only configured: the SVG holds the line and its symbols.
    assert chart.locator("svg path").count() > 5

    # The comparison sorts by a KPI, ascending then descending; missing cities go last.
    page.goto(f"{hub_url}/comparison")
    page.click("a.sort[data-key='satisfaction_rate']")
    page.wait_for_url(re.compile(r".*sort=satisfaction_rate&order=asc"))

    def rates() -> list[float]:
        cells = page.locator("#tbl-comparison td[data-key='satisfaction_rate']").all_inner_texts()
        return [float(c.rstrip("%")) for c in cells if c != "-"]

    ascending = rates()
    assert len(ascending) == 13 and ascending == sorted(ascending)
    rows = page.locator("#tbl-comparison tbody tr").all()
    assert rows[-1].get_attribute("data-city") == SILENT
    page.click("a.sort[data-key='satisfaction_rate']")
    page.wait_for_url(re.compile(r".*order=desc"))
    assert rates() == sorted(ascending, reverse=True)

    # Downloads: the sorted comparison as CSV and XLSX, the same numbers as the page.
    cells = {code: _cell(page, "comparison", code, "complaints_received") for code in CODES}
    with page.expect_download() as got:
        page.click("#export-comparison-csv")
    text = _read_download(got.value).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    head = next(i for i, r in enumerate(table) if r and r[0] == "地市代码")
    assert table[1][0] == "统计周期" and "2026-11-01" in table[1][1]
    assert table[2][0] == "生成时间"
    header = table[head]
    from_csv = {r[0]: r[header.index("投诉量")] for r in table[head + 1 :]}
    assert list(from_csv) == [
        r.get_attribute("data-city") for r in page.locator("#tbl-comparison tbody tr").all()
    ]
    with page.expect_download() as got:
        page.click("#export-comparison-xlsx")
    sheet = load_workbook(io.BytesIO(_read_download(got.value))).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    head = next(i for i, r in enumerate(values) if r and r[0] == "地市代码")
    col = values[head].index("投诉量")
    from_xlsx = {r[0]: r[col] for r in values[head + 1 :]}
    for code in CODES:
        if code == SILENT:
            assert cells[code] == "-" and from_csv[code] == "" and from_xlsx[code] is None
        else:
            expected = expected_complaints(code, NOVEMBER)
            assert int(cells[code]) == int(from_csv[code]) == from_xlsx[code] == expected

    # The language switch keeps the page and its sort.
    page.click("#lang-switch")
    page.wait_for_url(re.compile(r".*lang=en"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert "sort=satisfaction_rate" in page.url
    assert page.locator("header nav").inner_text().count("Comparison") == 1
    assert rates() == sorted(ascending, reverse=True)
    page.goto(f"{hub_url}/overview")
    assert page.locator("html").get_attribute("lang") == "en"  # it sticks
    assert "Lanzhou" in page.locator("#tbl-figures").inner_text()


def test_a_member_changes_their_own_password_from_the_header(page: Any, hub_url: str) -> None:
    page.goto(f"{hub_url}/login")
    page.fill("#staff_id", "announcer")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/links$"))
    page.click("#account-link")  # the name in the header
    page.wait_for_url(re.compile(r".*/account$"))
    assert "announcer" in page.locator("#account-who").inner_text()
    page.fill("#current", "not-the-password")
    page.fill("#new", "announcer-new-secret")
    page.fill("#again", "announcer-new-secret")
    page.click("#change-password")
    # Said in the page's language: Chinese by default, English after the switch.
    assert page.locator("#error-message").inner_text() == "当前密码不正确"
    page.goto(f"{hub_url}/account?lang=en")
    page.fill("#current", "not-the-password")
    page.fill("#new", "announcer-new-secret")
    page.fill("#again", "announcer-new-secret")
    page.click("#change-password")
    assert page.locator("#error-message").inner_text() == "the current password is wrong"
    page.fill("#current", PASSWORD)
    page.fill("#new", "announcer-new-secret")
    page.fill("#again", "announcer-new-secret")
    page.click("#change-password")
    page.wait_for_url(re.compile(r".*/account\?changed=1$"))
    assert page.locator("#password-changed").is_visible()
    # Still signed in, under the new password's session.
    page.goto(f"{hub_url}/links")
    assert page.url.endswith("/links")
