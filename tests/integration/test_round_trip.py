"""Every body kind city → hub and every notice kind hub → its target cities, over real mTLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Engine, Row, select

from city_node import services as city_services
from city_node.context import Actor
from city_node.domain import Role
from city_node.store import InboxNotice
from province_hub import services as hub_services
from province_hub.store import CityLink, NoticeDelivery, Record
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import today_in
from tests.conftest import ROSTER_CODES, wait_until

LEADER = Actor("leader-1", Role.LEADER)

TZ = "Asia/Shanghai"


def _yesterday() -> str:
    return (today_in(TZ) - timedelta(days=1)).isoformat()


def sample_bodies(notice_seq: int) -> dict[str, Message]:
    """One valid body of every sequenced kind but the receipt (recorded through the city's
    service); the trace answers ``notice_seq``, a notice sent to the city (the hub keeps an
    answer to a notice it did not send the city quarantined)."""
    day = _yesterday()
    stats = pb.StatisticsReport(
        period=pb.Period(kind=pb.DAY, start=day),
        revision=1,
        complaints_received=7,
        suggestions_received=2,
        enquiries_received=30,
        handled=7,
        closed=5,
        closed_in_time=4,
        overtime_open=1,
        repeat_complaints=1,
        escalations_raised=1,
        complaints_closed=5,
        satisfaction=pb.SatisfactionCounts(
            very_satisfied=1, satisfied=2, neutral=0, dissatisfied=1, surveyed=4
        ),
        by_category=[
            pb.SliceCounts(key="NET.BROADBAND", complaints=4),
            pb.SliceCounts(key="BILL.DISPUTE", complaints=3),
        ],
        by_channel=[pb.SliceCounts(key="phone", complaints=7)],
        operators=[pb.OperatorWorkload(operator_id="op-01", registered=7, closed=5)],
        approved_by="leader-1",
    )
    qa = pb.QaReport(
        period=pb.Period(kind=pb.DAY, start=day),
        revision=1,
        sampled=4,
        passed=3,
        mean_score_centi=9125,
        defects=[pb.DefectCount(kind=pb.LATE, count=1)],
        operators=[pb.OperatorQa(operator_id="op-01", sampled=4, passed=3, mean_score_centi=9125)],
        findings="one late return",
        inspector="qa-1",
    )
    escalation = pb.Escalation(
        ticket_id="T-1",
        kind=pb.COMPLAINT,
        category="NET.BROADBAND",
        channel="phone",
        tier=pb.VIP,
        reason="customer refuses the branch's answer",
        content="broadband down for a week",
        customer_name="张三",
        customer_phone="13900000000",
        history=[pb.HistoryEntry(actor="op-01", action="registered")],
    )
    suggestions = pb.SuggestionBatch(
        batch_date=day,
        batch_number=1,
        suggestions=[
            pb.Suggestion(ticket_id="S-1", category="SVC.INSTALL", content="weekend installs")
        ],
        classified_by="clerk-1",
    )
    overtime = pb.OvertimeReport(
        period=pb.Period(kind=pb.DAY, start=day),
        revision=1,
        cases=[
            pb.OvertimeCase(
                ticket_id="T-9",
                category="NET.FIXED",
                branch="城关",
                limit_hours=16,
                overdue_hours=5,
                compensation_fen=2000,
            )
        ],
        total_compensation_fen=2000,
    )
    trace = pb.TicketTrace(
        request_notice_seq=notice_seq, ticket_id="T-1", found=True, status="closed"
    )
    return {
        "statistics_report": stats,
        "qa_report": qa,
        "escalation": escalation,
        "suggestion_batch": suggestions,
        "overtime_report": overtime,
        "ticket_trace": trace,
    }


def _records(engine, city: str) -> list[Record]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(Record).where(Record.city_code == city).order_by(Record.seq)).all()
        )


async def test_every_body_kind_round_trips(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    code = ROSTER_CODES[0]
    city = start_city(city_settings_factory(code, databases("city"), hub.port))

    # A notice first, so the receipt has something to answer.
    announcement = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="hello", targets=[code]),
        roster_codes=ROSTER_CODES,
    )
    # And a trace request, which the sample trace answers (an answer names its request).
    request = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(
            kind=pb.TRACE_REQUEST,
            title="trace",
            targets=[code],
            trace_request=pb.TraceRequest(ticket_id="T-1"),
        ),
        roster_codes=ROSTER_CODES,
    )
    hub.broker.notify([code])
    await wait_until(
        lambda: len(city_services.inbox(city.engine)) >= 2, what="both notices in the inbox"
    )

    bodies = sample_bodies(request.seq)
    for body in bodies.values():
        city_services.send(city.engine, body, tz_name=TZ)
    receipt_seq = city_services.record_receipt(
        city.engine, notice_seq=announcement.seq, action="done", actor=LEADER, note="posted"
    )
    city.node.link.wake()

    # Every body, the receipt, and the node's own answer to the trace request (the ticket
    # is not in its store: found = false).
    def all_arrived():
        rows = _records(hub.engine, code)
        return rows if len(rows) == len(bodies) + 2 else None

    rows = await wait_until(all_arrived, what="every body at the hub")
    assert all(row.status == "accepted" for row in rows), [(r.kind, r.reason) for r in rows]
    traces = [pb.TicketTrace.FromString(r.body) for r in rows if r.kind == "ticket_trace"]
    assert sorted(t.found for t in traces) == [False, True]
    assert bodies["ticket_trace"] in traces
    by_kind = {row.kind: row for row in rows if row.kind != "ticket_trace"}
    assert set(by_kind) == {*bodies, "notice_receipt"} - {"ticket_trace"}
    for kind, body in bodies.items():
        if kind != "ticket_trace":
            stored = type(body).FromString(by_kind[kind].body)
            assert stored == body, kind
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    now = datetime.now(UTC)
    for row in rows:  # instants survive the hub's bulk path on both engines, as UTC
        created = (
            row.created_at.replace(tzinfo=UTC) if row.created_at.tzinfo is None else row.created_at
        )
        received = (
            row.received_at.replace(tzinfo=UTC)
            if row.received_at.tzinfo is None
            else row.received_at
        )
        assert now - timedelta(minutes=2) < created <= received <= now
    assert by_kind["notice_receipt"].seq == receipt_seq

    # The receipt changed the notice's delivery state; the heartbeat reached the link row.
    def receipt_applied() -> Row[Any]:
        with hub.engine.connect() as conn:
            applied: Row[Any] = conn.execute(
                select(
                    NoticeDelivery.done_at, NoticeDelivery.done_note, NoticeDelivery.delivered_at
                ).where(
                    NoticeDelivery.notice_seq == announcement.seq, NoticeDelivery.city_code == code
                )
            ).one()
            return applied

    done_at, note, _delivered_at = await wait_until(receipt_applied)
    assert done_at is not None and note == "posted"
    await wait_until(
        lambda: receipt_applied().delivered_at, what="delivery confirmed by the cursor"
    )

    def heartbeat_seen() -> Row[Any]:
        with hub.engine.connect() as conn:
            link: Row[Any] = conn.execute(select(CityLink).where(CityLink.city_code == code)).one()
            return link

    link = await wait_until(
        lambda: heartbeat_seen().heartbeat_at and heartbeat_seen(), what="a heartbeat"
    )
    assert link.acked_seq == len(rows)
    assert link.state == "connected"
    assert link.software_version


def inbox_titles_are(engine: Engine, titles: list[str]) -> bool:
    with engine.connect() as conn:
        return sorted(conn.execute(select(InboxNotice.title)).scalars()) == titles


async def test_every_notice_kind_reaches_only_its_targets(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    codes = ROSTER_CODES[:3]
    cities = {
        code: start_city(city_settings_factory(code, databases(f"city{code}"), hub.port))
        for code in codes
    }
    deadline = datetime.now(UTC) + timedelta(days=2)
    plan: list[tuple[pb.Notice, tuple[str, ...]]] = []
    for index, kind in enumerate(
        k for k in pb.NoticeKind.values() if k != pb.NOTICE_KIND_UNSPECIFIED
    ):
        targets = (codes[index % 3],) if index % 2 else (codes[0], codes[2])
        notice = pb.Notice(
            kind=kind, title=f"notice {pb.NoticeKind.Name(kind)}", targets=list(targets)
        )
        if kind == pb.TASK:
            notice.task_deadline.FromDatetime(deadline)
        if kind == pb.TRACE_REQUEST:
            notice.trace_request.ticket_id = "T-1"
        plan.append((notice, targets))
    # One to every city of the roster.
    plan.append((pb.Notice(kind=pb.ANNOUNCEMENT, title="to all"), codes))
    for notice, _ in plan:
        hub_services.send_notice(hub.engine, notice=notice, roster_codes=ROSTER_CODES)
    hub.broker.notify(codes)

    expected = {code: sorted(n.title for n, targets in plan if code in targets) for code in codes}

    for code, city in cities.items():
        await wait_until(
            partial(inbox_titles_are, city.engine, expected[code]), what=f"inbox of {code}"
        )
    # Nothing more arrives later (no duplicates, no strays).
    for city in cities.values():
        await city.stop()
    for code, city in cities.items():
        with city.engine.connect() as conn:
            assert sorted(conn.execute(select(InboxNotice.title)).scalars()) == expected[code]
