"""A city without a report of the period: the tables say 缺报 only when it owed one — not
yet due, or owed before the hub went live, they say that (the figures, QA and overtime
tables all said 缺报)."""

from __future__ import annotations

from typing import Any

from province_hub.web.tables import overtime_table, qa_table


def _city(code: str, status: str | None, **extra: Any) -> dict[str, Any]:
    city: dict[str, Any] = {"city_code": code, "name_zh": code, "name_en": code, "missing": True}
    if status is not None:
        city["report_status"] = status
    city.update(extra)
    return city


STANDINGS = {
    "620100": ("before_go_live", "上线前（不计）", "before go-live (not counted)"),
    "620200": ("pending", "未到期", "not yet due"),
    "620300": ("missing", "缺报", "missing"),
    "620400": (None, "缺报", "missing"),  # not judged (no deadlines): as before
    "620500": ("not_owed", "无需上报", "not owed"),  # QA of a week: owed monthly only
}


def _cities() -> list[dict[str, Any]]:
    return [_city(code, status) for code, (status, _, _) in STANDINGS.items()]


def _statuses(table: Any) -> dict[str, str]:
    return {r["city_code"]: r["status"] for r in table.rows if r["city_code"]}


def test_qa_and_overtime_tables_say_why_a_city_has_no_report() -> None:
    period = {"kind": "month", "start": "2026-10-01"}
    nothing: dict[str, Any] = {
        "sampled": 0,
        "passed": 0,
        "pass_rate": None,
        "mean_score": None,
        "defects": {},
    }
    qa = {"period": period, "cities": _cities(), "province": nothing}
    overtime = {
        "period": period,
        "cities": _cities(),
        "province": {"cases": 0, "total_compensation_fen": 0, "overdue_hours": 0},
    }
    for lang, i in (("zh", 1), ("en", 2)):
        wanted = {code: words[i] for code, words in STANDINGS.items()}
        assert _statuses(qa_table(qa, lang)) == wanted
        assert _statuses(overtime_table(overtime, lang)) == wanted


def test_a_received_report_reads_received_whatever_its_timeliness() -> None:
    period = {"kind": "month", "start": "2026-10-01"}
    city = _city("620100", "late", missing=False, branches=[], cases=0, total_compensation_fen=0)
    overtime = {
        "period": period,
        "cities": [city],
        "province": {"cases": 0, "total_compensation_fen": 0, "overdue_hours": 0},
    }
    assert set(_statuses(overtime_table(overtime, "zh")).values()) == {"已报"}
