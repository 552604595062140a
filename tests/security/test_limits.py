"""Promises about bad input at the services (one definition of each limit, ``sync.limits``).

- A receipt note or a report's decision note longer than the hub accepts is refused by the
  city's service with an error naming the note and the limit, before anything is queued.
- An id of 2^63 or more (report, QA sample, notice) is "does not exist", not a database
  overflow, on SQLite and PostgreSQL.
- Report periods outside the years 2000..2100 are refused by the city and quarantined by the
  hub.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from city_node import qa, reports, services
from city_node.context import Actor, CityError, NotFound, make_context
from city_node.domain import Role
from city_node.services import open_store
from city_node.store import create_schema
from province_hub.store import Record
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.limits import MAX_NOTE_CHARS
from sync.link import make_channel
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import load_city_tls
from sync.validation import broken_rule
from tests.conftest import ROSTER_CODES

CITY = ROSTER_CODES[0]
LEADER = Actor("leader-1", Role.LEADER)
INSPECTOR = Actor("qa-1", Role.QA_INSPECTOR)
TOO_BIG = 2**63


@pytest.fixture
def ctx(databases: Any) -> Any:
    engine = make_engine(databases("limits"))
    create_schema(engine)
    open_store(engine, CITY)
    yield make_context(engine, CITY)
    engine.dispose()


def outbox_size(ctx: Any) -> int:
    with ctx.engine.connect() as conn:
        size: int = conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one()
    return size


def notice(seq: int) -> pb.Notice:
    n = pb.Notice(seq=seq, kind=pb.TASK, priority=pb.HIGH, title="t", body="b", sender="hq")
    n.created_at.GetCurrentTime()
    return n


def test_a_receipt_note_over_the_hubs_limit_is_refused_before_it_is_queued(ctx: Any) -> None:
    services.accept_notice(ctx.engine, notice(7))
    before = outbox_size(ctx)
    too_long = "异" * (MAX_NOTE_CHARS + 1)
    with pytest.raises(CityError, match=f"note is {MAX_NOTE_CHARS + 1} characters; at most"):
        services.record_receipt(
            ctx.engine, notice_seq=7, action="objection", actor=LEADER, note=too_long
        )
    assert outbox_size(ctx) == before
    # The longest note the hub accepts goes, and the hub's own rule agrees with the city's.
    longest = "异" * MAX_NOTE_CHARS
    services.record_receipt(
        ctx.engine, notice_seq=7, action="objection", actor=LEADER, note=longest
    )
    assert outbox_size(ctx) == before + 1
    receipt = pb.NoticeReceipt(notice_seq=7, action=pb.OBJECTION, note=too_long)
    assert "at most" in (broken_rule("notice_receipt", receipt, tz_name="UTC") or "")
    receipt.note = longest
    assert broken_rule("notice_receipt", receipt, tz_name="UTC") is None


def test_a_decision_note_over_the_limit_is_refused_and_the_draft_stays(ctx: Any) -> None:
    draft = reports.draft(ctx, "statistics", "week", "2026-10-05", by="stat-1")
    with pytest.raises(CityError, match=r"note is \d+ characters; at most"):
        reports.approve(ctx, LEADER, draft.id, note="x" * (MAX_NOTE_CHARS + 1))
    with pytest.raises(CityError, match=r"note is \d+ characters; at most"):
        reports.reject(ctx, LEADER, draft.id, note="x" * (MAX_NOTE_CHARS + 1))
    assert reports.get(ctx, draft.id).status == "draft"
    assert outbox_size(ctx) == 0


@pytest.mark.parametrize("value", [TOO_BIG, 2**64 + 5])
def test_ids_beyond_64_bits_are_not_found(ctx: Any, value: int) -> None:
    services.accept_notice(ctx.engine, notice(7))
    calls: dict[str, Callable[[], object]] = {
        "report": lambda: reports.get(ctx, value),
        "report approval": lambda: reports.approve(ctx, LEADER, value),
        "QA sample": lambda: qa.get(ctx, value),
        "QA scoring": lambda: qa.score(
            ctx,
            INSPECTOR,
            value,
            items=dict.fromkeys([i.key for i in qa.SCORECARD], 90),
            defects=[],
        ),
        "notice receipt": lambda: services.record_receipt(
            ctx.engine, notice_seq=value, action="read", actor=LEADER
        ),
    }
    for name, call in calls.items():
        with pytest.raises(NotFound, match="does not exist") as refused:
            call()
        assert str(value) in str(refused.value), name
    assert outbox_size(ctx) == 0


@pytest.mark.parametrize("start", ["1900-01-01", "2101-01-01", "0001-01-01"])
def test_a_city_refuses_report_periods_outside_2000_to_2100(ctx: Any, start: str) -> None:
    with pytest.raises(CityError, match=r"outside the years 2000\.\.2100"):
        reports.draft(ctx, "statistics", "year", start, by="stat-1")
    assert reports.recent(ctx) == []


async def test_the_hub_quarantines_a_year_1900_report(
    databases, hub_settings_factory, start_hub, pki_dir
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    body = pb.StatisticsReport(period=pb.Period(kind=pb.YEAR, start="1900-01-01"), revision=1)
    envelope = build_envelope(city_code=CITY, epoch="9" * 32, seq=1, body=body)
    async with make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY)) as channel:
        ack = await pb_grpc.FederationStub(channel).Push(
            pb.PushRequest(envelopes=[envelope]), timeout=10
        )
    assert ack.acked_through_seq == 1 and ack.quarantined == 1
    with hub.engine.connect() as conn:
        status, reason = conn.execute(select(Record.status, Record.reason)).one()
    assert status == "quarantined"
    assert "1900-01-01 is outside the years 2000..2100" in reason
