"""A city's answers to notices (receipts, traces, escalation follow-ups) answer only notices
the hub sent to that city: another city's notice is not its to answer."""

from __future__ import annotations

from sqlalchemy import select

from province_hub import desk_views
from province_hub import services as hub_services
from province_hub.store import Notice, NoticeDelivery, Record
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES
from tests.integration.push.support import CITY, EPOCH, OTHER, push


def _send(engine, kind: pb.NoticeKind.ValueType, **fields) -> int:
    notice = hub_services.send_notice(
        engine,
        notice=pb.Notice(kind=kind, title="for the other city", targets=[OTHER], **fields),
        roster_codes=ROSTER_CODES,
    )
    return int(notice.seq)


def _follow_up(resolution_seq: int) -> pb.Escalation:
    body = pb.Escalation(
        ticket_id="T-9", kind=pb.COMPLAINT, tier=pb.ORDINARY, reason="r", content="c"
    )
    body.follow_up.resolution_notice_seq = resolution_seq
    body.follow_up.status = "closed"
    return body


async def test_answers_to_another_citys_notices_are_kept_quarantined_quietly(hub, stub):
    trace_seq = _send(hub.engine, pb.TRACE_REQUEST, trace_request=pb.TraceRequest(ticket_id="T-9"))
    resolution_seq = _send(hub.engine, pb.ANNOUNCEMENT)
    mine = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="for this city", targets=[CITY]),
        roster_codes=ROSTER_CODES,
    ).seq
    bodies = [
        pb.TicketTrace(request_notice_seq=trace_seq, ticket_id="T-9", found=True, status="x"),
        _follow_up(resolution_seq),
        pb.NoticeReceipt(notice_seq=resolution_seq, action=pb.READ, actor="leader-1"),
        # A follow-up on a resolution this hub never held (restored from an older backup)
        # still lands: it can only touch this city's own case of the ticket.
        _follow_up(10**15),
        pb.NoticeReceipt(notice_seq=mine, action=pb.READ, actor="leader-1"),
    ]
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=body)
        for n, body in enumerate(bodies, start=1)
    ]
    response = await push(stub, batch)
    assert (response.acked_through_seq, response.quarantined) == (5, 3)
    with hub.engine.connect() as conn:
        held = {
            r.seq: (r.kind, r.status, r.reason or "")
            for r in conn.execute(
                select(Record.seq, Record.kind, Record.status, Record.reason).where(
                    Record.city_code == CITY
                )
            )
        }
        kinds = conn.execute(select(Notice.kind)).scalars().all()
    assert held[1][:2] == ("ticket_trace", "quarantined")
    assert held[1][2].startswith("request_notice_seq:") and f"notice {trace_seq}" in held[1][2]
    assert held[2][:2] == ("escalation", "quarantined")
    assert held[2][2].startswith("follow_up.resolution_notice_seq:")
    assert held[3][:2] == ("notice_receipt", "quarantined")
    assert held[4][:2] == ("escalation", "accepted")
    assert held[5][:2] == ("notice_receipt", "accepted")
    assert "REJECTION" not in kinds  # nothing for the city to correct
    # The other city's trace request still waits for its own city's answer.
    [trace] = desk_views.traces(hub.engine, personal=False, notice_seq=trace_seq)
    assert trace["city_code"] == OTHER and trace["answer"] is None


async def test_an_answer_marks_its_notice_delivered_no_later_than_it(hub, stub):
    # No stream, no heartbeat: the city's cursor has confirmed nothing when the answers come.
    def mine(kind: pb.NoticeKind.ValueType, **fields) -> int:
        notice = pb.Notice(kind=kind, title="for this city", targets=[CITY], **fields)
        return int(
            hub_services.send_notice(hub.engine, notice=notice, roster_codes=ROSTER_CODES).seq
        )

    read_seq = mine(pb.ANNOUNCEMENT)
    trace_seq = mine(pb.TRACE_REQUEST, trace_request=pb.TraceRequest(ticket_id="T-1"))
    receipt = pb.NoticeReceipt(notice_seq=read_seq, action=pb.READ, actor="leader-1")
    receipt.acted_at.GetCurrentTime()
    bodies = [receipt, pb.TicketTrace(request_notice_seq=trace_seq, ticket_id="T-1")]
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=body)
        for n, body in enumerate(bodies, start=1)
    ]
    assert (await push(stub, batch)).quarantined == 0
    with hub.engine.connect() as conn:
        rows = {
            r.notice_seq: r
            for r in conn.execute(
                select(
                    NoticeDelivery.notice_seq, NoticeDelivery.delivered_at, NoticeDelivery.read_at
                ).where(NoticeDelivery.city_code == CITY)
            )
        }
    assert rows[read_seq].delivered_at is not None
    assert rows[read_seq].delivered_at <= rows[read_seq].read_at
    [trace] = desk_views.traces(hub.engine, personal=False, notice_seq=trace_seq)
    assert trace["state"] == "answered"
    assert trace["delivered_at"] is not None and trace["delivered_at"] <= trace["answered_at"]


async def test_an_answer_must_be_about_the_ticket_and_notice_it_names(hub, stub):
    """A trace answers one ticket's request and a follow-up one ticket's resolution: an
    answer naming this city's notice but another ticket (or a notice of another kind) is
    kept quarantined, naming the field — before, another ticket's status and history stood
    on the asked ticket's trace, and a follow-up closed the wrong case on the desk."""

    def mine(kind: pb.NoticeKind.ValueType, **fields) -> int:
        notice = pb.Notice(kind=kind, title="for this city", targets=[CITY], **fields)
        sent = hub_services.send_notice(hub.engine, notice=notice, roster_codes=ROSTER_CODES)
        return int(sent.seq)

    trace_seq = mine(pb.TRACE_REQUEST, trace_request=pb.TraceRequest(ticket_id="T-1"))
    resolution_seq = mine(
        pb.ESCALATION_RESOLUTION,
        escalation_resolution=pb.EscalationResolution(ticket_id="T-1", resolution="upheld"),
    )
    follow_up = _follow_up(resolution_seq)  # about T-9
    bodies = [
        pb.TicketTrace(request_notice_seq=trace_seq, ticket_id="OTHER", found=True, status="x"),
        follow_up,
        pb.TicketTrace(request_notice_seq=resolution_seq, ticket_id="T-1", found=False),
        pb.TicketTrace(request_notice_seq=trace_seq, ticket_id="T-1", found=False),
    ]
    # A resolution typed " 012" at the shell names the city's ticket 12.
    typed = mine(
        pb.ESCALATION_RESOLUTION,
        escalation_resolution=pb.EscalationResolution(ticket_id=" 012", resolution="upheld"),
    )
    numbered = _follow_up(typed)
    numbered.ticket_id = "12"
    bodies.append(numbered)
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=body)
        for n, body in enumerate(bodies, start=1)
    ]
    response = await push(stub, batch)
    assert (response.acked_through_seq, response.quarantined) == (5, 3)
    with hub.engine.connect() as conn:
        held = {
            r.seq: (r.status, r.reason or "")
            for r in conn.execute(select(Record.seq, Record.status, Record.reason))
        }
    assert held[1][0] == "quarantined"
    assert held[1][1].startswith(f"ticket_id: notice {trace_seq} is about ticket 'T-1', not")
    assert held[2][0] == "quarantined" and "about ticket 'T-1', not 'T-9'" in held[2][1]
    assert held[3][0] == "quarantined"
    assert "is of kind ESCALATION_RESOLUTION, not TRACE_REQUEST" in held[3][1]
    assert held[4][0] == "accepted" and held[5][0] == "accepted"
    [trace] = desk_views.traces(hub.engine, personal=False, notice_seq=trace_seq)
    assert trace["answer"] is not None and trace["answer"]["found"] is False


async def test_a_task_done_in_time_stays_done_in_time_when_recorded_again(hub, stub):
    """The city may record done again (the leader pressed twice, a store restored): the hub
    judges completion by the first time the city said so, and keeps the latest note."""
    from datetime import UTC, datetime, timedelta

    from province_hub import notice_board

    deadline = datetime.now(UTC) - timedelta(hours=1)
    notice = pb.Notice(kind=pb.TASK, title="整改", targets=[CITY])
    notice.task_deadline.FromDatetime(deadline)
    seq = int(hub_services.send_notice(hub.engine, notice=notice, roster_codes=ROSTER_CODES).seq)

    def done(n: int, at: datetime, note: str) -> pb.Envelope:
        receipt = pb.NoticeReceipt(notice_seq=seq, action=pb.DONE, actor="leader-1", note=note)
        receipt.acted_at.FromDatetime(at)
        return build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=receipt)

    in_time = deadline - timedelta(minutes=30)
    await push(stub, [done(1, in_time, "first")])
    await push(stub, [done(2, deadline + timedelta(minutes=20), "amended")])  # after it
    after = deadline + timedelta(hours=2)
    detail = notice_board.notice_detail(hub.engine, seq, now=after)
    (city,) = detail.cities
    assert city["done_at"] == in_time and city["done_note"] == "amended"
    assert detail.completion is not None
    assert city["overdue"] is False and detail.completion["numerator"] == 1
    assert notice_board.completion_kpi(hub.engine)["numerator"] == 1
