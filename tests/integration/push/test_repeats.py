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


def _month_report(revision: int, complaints: int) -> pb.StatisticsReport:
    return pb.StatisticsReport(
        period=pb.Period(kind=pb.MONTH, start="2025-01-01"),
        revision=revision,
        complaints_received=complaints,
        approved_by="leader-1",
    )


async def test_a_held_revision_is_one_report(hub, stub):
    """A revision number of a period names one report. The same report again (any epoch,
    any batch) is a repeat; other figures under a held number (a city restored from an older
    copy re-drafting it) are quarantined with a REJECTION naming the next revision — before,
    each was accepted, and the period's figures flipped with every arrival."""
    from province_hub import consolidation
    from province_hub.store import Notice
    from sync.roster import load_roster

    roster = load_roster()

    def complaints() -> int:
        got = consolidation.figures(
            hub.engine, period_kind="month", start="2025-01-01", roster=roster
        )
        (city,) = [c for c in got["cities"] if c["city_code"] == CITY]
        return int(city["complaints_received"])

    bodies = [_month_report(3, 30), _month_report(3, 40), _month_report(3, 30)]
    # Within one batch as well: a copy right behind the report it copies.
    bodies += [_month_report(4, 50), _month_report(4, 50), _month_report(5, 55)]
    for n, body in enumerate(bodies[:3], start=1):
        await push(stub, [build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=body)])
        assert complaints() == 30
    response = await push(
        stub,
        [
            build_envelope(city_code=CITY, epoch=EPOCH, seq=n, body=body)
            for n, body in enumerate(bodies[3:], start=4)
        ],
    )
    assert response.acked_through_seq == 6 and response.quarantined == 0
    assert complaints() == 55
    with hub.engine.connect() as conn:
        held = {
            r.seq: (r.status, r.reason or "")
            for r in conn.execute(select(Record.seq, Record.status, Record.reason))
        }
        rejections = [
            pb.Notice.FromString(payload)
            for payload in conn.execute(
                select(Notice.payload).where(Notice.kind == "REJECTION")
            ).scalars()
        ]
    assert [held[n][0] for n in range(1, 7)] == [
        "accepted", "quarantined", "repeated", "accepted", "repeated", "accepted"
    ]  # fmt: skip
    assert "revision 3 of this period is held already (seq 1)" in held[2][1]
    assert "a new revision, 4 or above" in held[2][1]
    assert "the same statistics_report as seq 1" in held[3][1]
    assert "the same statistics_report as seq 4" in held[5][1]
    assert [r.rejection.seq for r in rejections] == [2]
    assert "4 or above" in rejections[0].rejection.reason
    assert rejections[0].rejection.next_revision == 4
    revisions = consolidation.revisions(
        hub.engine, city_code=CITY, period_kind="month", start="2025-01-01"
    )
    assert [r["revision"] for r in revisions["revisions"]] == [3, 4, 5]


async def test_a_copy_of_any_report_held_under_one_revision_is_a_repeat(hub, stub):
    """A store from before the rule may hold two reports under one revision (each was
    accepted then): a copy of either is a repeat of that one, whatever order the database
    hands them back in."""
    from sqlalchemy import insert, update

    from province_hub.store import CityLink

    first, second = _month_report(3, 30), _month_report(3, 40)
    await push(stub, [build_envelope(city_code=CITY, epoch=EPOCH, seq=1, body=first)])
    other = build_envelope(city_code=CITY, epoch=EPOCH, seq=2, body=second)
    with hub.engine.begin() as conn:  # as a hub before the rule accepted it
        row = dict(conn.execute(select(Record.__table__).where(Record.seq == 1)).one()._mapping)
        row.update(seq=2, digest=other.content_digest, body=second.SerializeToString())
        conn.execute(insert(Record), [row])
        conn.execute(update(CityLink).where(CityLink.city_code == CITY).values(acked_seq=2))
    copies = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=3, body=second),
        build_envelope(city_code=CITY, epoch=EPOCH, seq=4, body=first),
    ]
    response = await push(stub, copies)
    assert response.acked_through_seq == 4 and response.quarantined == 0
    with hub.engine.connect() as conn:
        held = {
            r.seq: (r.status, r.reason or "")
            for r in conn.execute(select(Record.seq, Record.status, Record.reason))
        }
    assert held[3][0] == "repeated" and "the same statistics_report as seq 2" in held[3][1]
    assert held[4][0] == "repeated" and "the same statistics_report as seq 1" in held[4][1]


async def test_the_same_figures_approved_again_are_a_repeat_not_a_correction(hub, stub):
    """A city restored from an older copy whose leader approves the same draft again sends
    the same figures with another approval time (perhaps another leader): the same report,
    kept as a repeat and counted once — not quarantined as a correction under a held
    revision, which would ask the city for a revision it has no reason to make."""
    from province_hub import consolidation
    from sync.roster import load_roster

    first = _month_report(1, 30)
    first.approved_at.FromSeconds(1_790_000_000)
    again = _month_report(1, 30)
    again.approved_by = "leader-2"
    again.approved_at.FromSeconds(1_790_086_400)
    other = _month_report(1, 31)  # other figures under the held revision: still refused
    other.approved_at.FromSeconds(1_790_090_000)
    await push(stub, [build_envelope(city_code=CITY, epoch=EPOCH, seq=1, body=first)])
    response = await push(
        stub,
        [
            build_envelope(city_code=CITY, epoch="f" * 32, seq=n, body=body)
            for n, body in ((2, again), (3, other))
        ],
    )
    assert response.acked_through_seq == 3 and response.quarantined == 1
    # Within one batch too: a report and the same figures approved again behind it.
    later = [_month_report(2, 40), _month_report(2, 40)]
    later[1].approved_at.FromSeconds(1_790_100_000)
    response = await push(
        stub,
        [
            build_envelope(city_code=CITY, epoch="f" * 32, seq=n, body=body)
            for n, body in enumerate(later, start=4)
        ],
    )
    assert response.quarantined == 0
    with hub.engine.connect() as conn:
        held = {
            r.seq: (r.status, r.reason or "")
            for r in conn.execute(select(Record.seq, Record.status, Record.reason))
        }
    assert [held[n][0] for n in range(1, 6)] == [
        "accepted", "repeated", "quarantined", "accepted", "repeated"
    ]  # fmt: skip
    assert "the same statistics_report as seq 1 (same period, revision and figures)" in held[2][1]
    assert "revision 1 of this period is held already (seq 1)" in held[3][1]
    assert "the same statistics_report as seq 4" in held[5][1]
    got = consolidation.figures(
        hub.engine, period_kind="month", start="2025-01-01", roster=load_roster()
    )
    (city,) = [c for c in got["cities"] if c["city_code"] == CITY]
    assert (city["revision"], city["complaints_received"]) == (2, 40)


async def test_a_next_revision_past_32_bits_is_said_in_the_reason_only(hub, stub):
    """Revisions are checked from 1 up only: a held revision near 2^32 makes the lowest one
    taken past the wire's 32-bit field. The report is still quarantined with its REJECTION
    (no failed Push blocking the stream), the number said in the reason alone."""
    from province_hub.store import Notice

    top = 2**32 - 1
    await push(
        stub, [build_envelope(city_code=CITY, epoch=EPOCH, seq=1, body=_month_report(top, 1))]
    )
    response = await push(
        stub, [build_envelope(city_code=CITY, epoch=EPOCH, seq=2, body=_month_report(top, 2))]
    )
    assert response.acked_through_seq == 2 and response.quarantined == 1
    with hub.engine.connect() as conn:
        [payload] = conn.execute(select(Notice.payload).where(Notice.kind == "REJECTION")).scalars()
    rejection = pb.Notice.FromString(payload).rejection
    assert rejection.next_revision == 0 and f"{top + 1} or above" in rejection.reason
