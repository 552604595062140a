"""A link's error on the supervisor's pages: a Chinese page said the hub's refusals only in
English (``SequenceConflict: city … sends seq …``). It now leads with what the error is
about, and keeps the stored sentence for whoever follows it up; English pages, the API and
the CLI show it as stored."""

from __future__ import annotations

from typing import Any

import pytest

from province_hub.status import current_error
from province_hub.web.tables import LINK_ERRORS_ZH, links_table
from sync import errors

CONFLICT = (
    "SequenceConflict: city 620100 sends seq 5 under epoch b, but the hub holds seqs up to 9 "
    "under epoch a"
)


def row(state: str, last_error: str = "", city_last_error: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "city_code": "620100",
        "state": state,
        "last_contact": None,
        "acked_seq": 9,
        "records": {"statistics_report": 3},
        "quarantined": 0,
        "backlog": 0,
        "oldest_unsent_age_s": 0,
        "last_error": last_error,
        "city_last_error": city_last_error,
    }
    out["error"] = current_error(out)
    return out


def shown(r: dict[str, Any], lang: str) -> str:
    return str(links_table([r], {"620100": "兰州"}, lang).rows[0]["error"])


def test_a_refusal_leads_with_its_meaning_on_a_chinese_page() -> None:
    r = row("conflict", CONFLICT)
    zh = shown(r, "zh")
    assert (
        zh.startswith("序号冲突")
        and "fedsync city rebase" in zh
        and zh.endswith(f"（原文：{CONFLICT}）")
    )
    assert shown(r, "en") == CONFLICT


def test_a_city_error_and_a_restored_hub_are_told_apart() -> None:
    city = row("silent", city_last_error="UNAVAILABLE: connection refused")
    assert shown(city, "zh").startswith("地市报告的错误（原文：UNAVAILABLE")
    behind = row("behind", "the city has delivered up to seq 12; this hub holds up to 9")
    assert shown(behind, "zh").startswith("省中心从较早的备份恢复")
    assert shown(row("connected", CONFLICT), "zh") == ""  # history, not the matter now


@pytest.mark.parametrize("name", sorted(LINK_ERRORS_ZH))
def test_every_named_refusal_is_a_link_error_the_hub_raises(name: str) -> None:
    """A table key that no longer names a refusal would silently fall back to the generic
    words."""
    assert issubclass(getattr(errors, name), errors.LinkError)
    assert shown(row("silent", f"{name}: something"), "zh").startswith(LINK_ERRORS_ZH[name])


def test_a_silent_links_refusal_is_shown_only_when_no_contact_came_after_it() -> None:
    """A conflict the city fixed (re-based, pushed again for minutes) is history when it
    falls silent later: the silence is not about it."""
    fixed = row("silent", CONFLICT)
    fixed.update(
        last_error_at="2026-11-30T08:00:00+00:00", last_contact="2026-11-30T08:06:00+00:00"
    )
    assert current_error(fixed) == ""
    fixed["city_last_error"] = "UNAVAILABLE: connection refused"
    assert current_error(fixed) == "UNAVAILABLE: connection refused"
    # Refused at its last contact (the refusal is the contact): still the matter.
    stuck = row("silent", CONFLICT)
    stuck.update(
        last_error_at="2026-11-30T08:00:00+00:00", last_contact="2026-11-30T08:00:00+00:00"
    )
    assert current_error(stuck) == CONFLICT
    # A link stopped by a refusal keeps it whatever came after.
    conflict = row("conflict", CONFLICT)
    conflict.update(
        last_error_at="2026-11-30T08:00:00+00:00", last_contact="2026-11-30T08:06:00+00:00"
    )
    assert current_error(conflict) == CONFLICT
