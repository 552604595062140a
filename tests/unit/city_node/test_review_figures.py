"""The review's figures: rates keep numerator and denominator and are absent (not 0 %) on
an empty denominator; arrows and colours follow which way is good; link states and the
ticket list's pages are derived, not stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from city_node.link_view import link_view
from city_node.review import Figure, format_value, rate
from city_node.ticket_list import paging
from sync.outbox import LinkSnapshot


def test_rates_and_trends() -> None:
    assert rate(3, 0) is None
    assert format_value(None, "rate") == "—"
    f = Figure("kpi_in_time", 0.9, 0.8, "rate", "up", 9, 10, 8, 10)
    assert (f.arrow, f.trend, f.show(), f.show_delta()) == ("↑", "good", "90.0%", "+10.0 pp")
    worse = Figure("kpi_repeat", 0.2, 0.1, "rate", "down")
    assert (worse.arrow, worse.trend) == ("↑", "bad")
    assert Figure("closed", 5, None).trend == "none" and Figure("closed", 5, None).arrow == ""
    assert Figure("closed", 5, 5).arrow == "→"
    assert format_value(12.5, "yuan") == "¥12.50" and format_value(1234, "count") == "1,234"


def _snap(state: str, contact: datetime | None, **extra: object) -> LinkSnapshot:
    values: dict[str, object] = dict(
        city_code="620100",
        epoch="e",
        last_seq=5,
        delivered_seq=5,
        notice_cursor=0,
        state=state,
        last_error="hub unreachable",
        last_error_at=None,
        last_push_at=None,
        last_contact_at=contact,
        hub_acked_seq=5,
        last_rejection="",
        oldest_unsent_at=None,
    )
    values.update(extra)
    return LinkSnapshot(**values)  # type: ignore[arg-type]


def test_link_state_is_derived() -> None:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    assert link_view(_snap("never", None), now=now).state == "never"
    live = link_view(_snap("connected", now - timedelta(seconds=5)), now=now)
    assert live.state == "connected" and live.error == ""
    quiet = link_view(_snap("connected", now - timedelta(minutes=3)), now=now)
    assert quiet.state == "silent" and quiet.since == now - timedelta(minutes=3)
    assert quiet.error == "hub unreachable"
    assert link_view(_snap("revoked", now), now=now).state == "revoked"
    waiting = link_view(
        _snap("backing-off", now, last_seq=9, oldest_unsent_at=now - timedelta(minutes=2)),
        now=now,
    )
    assert waiting.backlog == 4 and waiting.oldest_unsent_age == timedelta(minutes=2)


def test_a_stopped_link_is_not_silent_and_an_old_error_is_history() -> None:
    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    # A refusal or the client's own failure waits for a person, whatever the clock says.
    for stored, shown in (("hub-revoked", "hub-revoked"), ("error", "stopped")):
        view = link_view(_snap(stored, now - timedelta(hours=1)), now=now)
        assert (view.state, view.since, view.error) == (shown, None, "hub unreachable")
    # An error from 16:00, then an hour connected, then the node stopped at 17:00: the
    # silence is not about that error.
    recovered = link_view(
        _snap(
            "connected",
            now - timedelta(hours=1),
            last_error_at=now - timedelta(hours=2),
        ),
        now=now,
    )
    assert recovered.state == "silent" and (recovered.error, recovered.error_at) == ("", None)
    # An error after the last contact (the hub went away): the matter.
    away = link_view(
        _snap("backing-off", now - timedelta(hours=1), last_error_at=now - timedelta(minutes=5)),
        now=now,
    )
    assert away.state == "silent" and away.error == "hub unreachable"


def test_paging() -> None:
    p = paging(0, 0)
    assert (p.total, p.page, p.pages, p.links) == (0, 1, 1, [(1, 0)])
    p = paging(1000, 500)
    assert p.page == 11 and p.pages == 20
    pages = [link[0] if link else None for link in p.links]
    assert pages == [1, None, 9, 10, 11, 12, 13, None, 20]


def test_the_nodes_own_notes_on_notices_read_in_chinese() -> None:
    """What the node did with a notice by itself is stored in English; a Chinese page says
    it in Chinese, keeping what it quotes."""
    from city_node.notice_refs import handled_text

    said = {
        "resolution applied to ticket 7: returned for the callback": (
            "处理结果已记入工单 7：退回待回访"
        ),
        "trace answered automatically (5 steps)": "调单已自动答复（5 个步骤）",
        "trace answered: ticket 99 not found": "调单已答复：未找到工单 99",
        "standard answer roaming v2 is current; supersedes v1": (
            "统一口径 roaming 第 2 版为现行版，替代 v1"
        ),
        "standard answer roaming v1 kept as superseded: v2 is current": (
            "统一口径 roaming 第 1 版已存为旧版：现行为第 2 版"
        ),
        "resolution not applied: ticket 8 is closed": "处理结果未能记入：ticket 8 is closed",
        "not applied: ValueError: bad": "未能处理：ValueError: bad",
    }
    for note, zh in said.items():
        assert handled_text(note, "zh") == zh
        assert handled_text(note, "en") == note
    assert handled_text("something new", "zh") == "something new"  # unknown: as written
    assert handled_text(None, "zh") is None
