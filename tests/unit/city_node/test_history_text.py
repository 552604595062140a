"""History steps are stored as a code and parameters and read in the reader's language;
the province still receives the English line; c0007 recognises the old English text."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from city_node.domain import Action, HistoryEntry, NoteCode, Role
from city_node.history_text import entry_text, render, wire_text

c0007 = importlib.import_module("city_node.migrations.versions.c0007_history_codes")

AT = datetime(2026, 3, 2, 1, tzinfo=UTC)


def _entry(code: NoteCode, params: dict[str, str | int | bool], note: str = "") -> HistoryEntry:
    return HistoryEntry(
        AT, "op", Role.OPERATOR_SENIOR, Action.DISPATCH, note, code=code, params=params
    )


@pytest.mark.parametrize(
    ("code", "params", "note", "zh", "en"),
    [
        (
            NoteCode.DISPATCHED_TO,
            {"branch": "网络维护中心"},
            "",
            "派往 网络维护中心",
            "to 网络维护中心",
        ),
        (NoteCode.SURVEYED, {"outcome": "satisfied", "reopened": False}, "", "满意", "satisfied"),
        (
            NoteCode.SURVEYED,
            {"outcome": "dissatisfied", "reopened": True},
            "",
            "不满意；已重新打开",
            "dissatisfied; reopened",
        ),
        (
            NoteCode.EXTENSION_REQUESTED,
            {"days": 2},
            "备件",
            "申请延期 2 个工作日：备件",
            "+2 workdays: 备件",
        ),
        (NoteCode.COMPENSATION, {"fen": 1250}, "超时", "赔付 12.50 元：超时", "12.50 yuan: 超时"),
        (
            NoteCode.PROVINCE_RESOLUTION,
            {"resolution": "已退费"},
            "",
            "省公司处理结果：已退费",
            "province resolution: 已退费",
        ),
        (NoteCode.NOTE, {}, "客户来电", "客户来电", "客户来电"),
    ],
)
def test_a_step_reads_in_each_language(code, params, note, zh, en) -> None:
    entry = _entry(code, params, note)
    assert entry_text(entry, "zh") == zh
    assert entry_text(entry, "en") == en
    assert wire_text(entry) == en


def test_times_are_shown_in_the_zone_and_sent_as_stored() -> None:
    entry = _entry(
        NoteCode.DEADLINE_MOVED,
        {"from": "2026-03-02T09:00:00+00:00", "to": "2026-03-04T09:00:00+00:00"},
    )
    zone = ZoneInfo("Asia/Shanghai")
    assert entry_text(entry, "zh", zone) == "时限 2026-03-02 17:00 → 2026-03-04 17:00"
    assert wire_text(entry) == "deadline 2026-03-02T09:00:00+00:00 -> 2026-03-04T09:00:00+00:00"


def test_wire_keeps_raw_outcome_values() -> None:
    entry = _entry(NoteCode.SURVEYED, {"outcome": "very_satisfied", "reopened": False})
    assert wire_text(entry) == "very_satisfied"
    assert entry_text(entry, "en") == "very satisfied"


def test_parameters_that_do_not_fit_are_shown_not_raised() -> None:
    assert render(NoteCode.DISPATCHED_TO, {"x": 1}, "", "zh") == "x=1"


@pytest.mark.parametrize(
    ("action", "note", "to_status", "outcome", "expected"),
    [
        (
            "dispatch",
            "to 网络维护中心",
            "dispatched",
            None,
            ("dispatched_to", {"branch": "网络维护中心"}, ""),
        ),
        ("dispatch", "急", "dispatched", None, ("note", None, "急")),
        (
            "survey",
            "satisfied",
            "surveyed",
            "satisfied",
            ("surveyed", {"outcome": "satisfied", "reopened": False}, ""),
        ),
        (
            "survey",
            "客户仍不满意",
            "in_progress",
            "dissatisfied",
            ("surveyed", {"outcome": "dissatisfied", "reopened": True}, "客户仍不满意"),
        ),
        (
            "request_extension",
            "+3 workdays: 等待\n备件",
            "in_progress",
            None,
            ("extension_requested", {"days": 3}, "等待\n备件"),
        ),
        (
            "province_resolved",
            "province resolution: 已处理",
            "returned",
            None,
            ("province_resolution", {"resolution": "已处理"}, ""),
        ),
        ("compensate", "12.50 yuan: 超时", "closed", None, ("compensation", {"fen": 1250}, "超时")),
        ("classify", "资费", "registered", None, ("classified", {"label": "资费"}, "")),
        (
            "close",
            "to whom it may concern",
            "closed",
            None,
            ("note", None, "to whom it may concern"),
        ),
    ],
)
def test_c0007_recognises_what_the_code_wrote(action, note, to_status, outcome, expected) -> None:
    assert c0007.coded(action, note, to_status, outcome) == expected
