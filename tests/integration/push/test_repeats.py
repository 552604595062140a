"""The same body about the same thing under a new seq (a city restored from an older copy
and re-based makes its suggestion batch, its receipt… again) is kept as a repeat and counted
nowhere: the hub holds each distinct envelope once."""

from __future__ import annotations

from sqlalchemy import select

from province_hub import desk, desk_views
from province_hub import services as hub_services
from province_hub.consolidation import records as record_views
from province_hub.store import Record
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES
from tests.integration.push.support import CITY, EPOCH, push, suggestion


async def test_a_body_made_again_under_a_new_seq_is_kept_as_a_repeat(hub, stub):
    notice = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="for this city", targets=[CITY]),
        roster_codes=ROSTER_CODES,
    )
    receipt = pb.NoticeReceipt(notice_seq=notice.seq, action=pb.READ, actor="leader-1")
    receipt.acted_at.FromSeconds(1_790_000_000)
    other = pb.NoticeReceipt(notice_seq=notice.seq, action=pb.DONE, actor="leader-1")
    bodies = [suggestion(4), receipt, suggestion(4), receipt, suggestion(5), other]
    first = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=body)
        for n, body in enumerate(bodies[:2], start=1)
    ]
    await push(stub, first)
    # Later, after a restore and a re-base (another epoch; the hub's mark carried on).
    again = [
        build_envelope(city_code=CITY, epoch="f" * 32, seq=n, body=body)
        for n, body in enumerate(bodies[2:], start=3)
    ]
    response = await push(stub, again)
    assert response.acked_through_seq == 6 and response.quarantined == 0
    with hub.engine.connect() as conn:
        held = {
            r.seq: (r.status, r.reason or "")
            for r in conn.execute(select(Record.seq, Record.status, Record.reason))
        }
    assert [held[n][0] for n in range(1, 7)] == [
        "accepted", "accepted", "repeated", "repeated", "accepted", "accepted"
    ]  # fmt: skip
    assert "the same suggestion_batch as seq 1" in held[3][1]
    assert "the same notice_receipt as seq 2" in held[4][1]
    # Counted once: batch 4 and batch 5, not batch 4 twice.
    batches = record_views.suggestion_batches(hub.engine, city_code=CITY)
    assert sorted(b["batch_number"] for b in batches) == [4, 5]


async def test_a_repeated_trace_answer_or_escalation_leaves_the_desk_as_it_was(hub, stub):
    request = hub_services.send_notice(
        hub.engine,
        notice=pb.Notice(
            kind=pb.TRACE_REQUEST,
            title="trace",
            targets=[CITY],
            trace_request=pb.TraceRequest(ticket_id="T-7"),
        ),
        roster_codes=ROSTER_CODES,
    )
    answer = pb.TicketTrace(
        request_notice_seq=request.seq, ticket_id="T-7", found=True, status="closed"
    )
    escalation = pb.Escalation(
        ticket_id="T-7", kind=pb.COMPLAINT, tier=pb.ORDINARY, reason="r", content="c"
    )
    for epoch, first in (("a" * 32, 1), ("b" * 32, 3)):
        envs = [
            build_envelope(city_code=CITY, epoch=epoch, seq=first + n, body=body)
            for n, body in enumerate((answer, escalation))
        ]
        await push(stub, envs)
    traced = desk_views.traces(hub.engine, personal=False, notice_seq=request.seq)
    assert traced[0]["state"] == "answered", traced
    assert desk.escalation_seq(hub.engine, CITY, "T-7") == 2  # the accepted one, not 4
