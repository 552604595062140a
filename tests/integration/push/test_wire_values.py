"""Values a client in any language can put on the wire that the hub's stores cannot hold.

Each is answered with a status and a message naming the field (or quarantined, for a body
value), never an unexpected server error, and leaves what the hub already holds unchanged.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlalchemy import select

from province_hub.store import CityLink, DeskCase, NoticeDelivery, Record
from sync import errors
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.version import SCHEMA_VERSION
from tests.integration.push.support import CITY, EPOCH, envelopes, push, refused, store_state

#: Seconds of 10000-01-01T00:00:00Z, one past a Timestamp's last second.
YEAR_10000 = 253_402_300_800


def escalation(ticket_id: str) -> pb.Escalation:
    return pb.Escalation(
        ticket_id=ticket_id,
        kind=pb.COMPLAINT,
        tier=pb.ORDINARY,
        reason="the city cannot settle it",
        content="refund",
    )


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(YEAR_10000 * 10, 0), (-2 * YEAR_10000, 0), (1_700_000_000, -1), (1_700_000_000, 10**9)],
    ids=["far-future", "before-year-1", "negative-nanos", "nanos-over-a-second"],
)
async def test_created_at_outside_a_timestamp_is_invalid_argument(hub, stub, seconds, nanos):
    await push(stub, envelopes(CITY, 1, 2))
    before = store_state(hub.engine)
    batch = envelopes(CITY, 3, 2)
    batch[1].created_at.seconds, batch[1].created_at.nanos = seconds, nanos
    code, message, exc = await refused(push(stub, batch))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert "envelopes[1].created_at" in message and "Timestamp" in message
    assert isinstance(exc, errors.MalformedEnvelope) and exc.field == "envelopes[1].created_at"
    assert exc.acked_through_seq == 2
    assert store_state(hub.engine) == before
    # The first and the last instant a Timestamp holds are accepted.
    batch[0].created_at.seconds, batch[0].created_at.nanos = -62_135_596_800, 0
    batch[1].created_at.seconds, batch[1].created_at.nanos = YEAR_10000 - 1, 999_999_999
    assert (await push(stub, batch)).acked_through_seq == 4


async def test_an_envelope_without_created_at_is_invalid_argument(hub, stub):
    # Left out, the field would read as 1970-01-01 (an escalation decades overdue on the desk).
    await push(stub, envelopes(CITY, 1, 2))
    before = store_state(hub.engine)
    batch = envelopes(CITY, 3, 2)
    batch[1].ClearField("created_at")
    code, message, exc = await refused(push(stub, batch))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert "envelopes[1] has no created_at" in message
    assert isinstance(exc, errors.MalformedEnvelope) and exc.field == "envelopes[1].created_at"
    assert store_state(hub.engine) == before
    # The epoch's own instant, stated, is a value like any other.
    batch[1].created_at.seconds = 0
    assert (await push(stub, batch)).acked_through_seq == 4


async def test_body_instant_outside_a_timestamp_is_quarantined_naming_it(hub, stub):
    await push(stub, envelopes(CITY, 1, 1))
    late = escalation("T-late")
    late.registered_at.seconds = YEAR_10000 * 10
    old = escalation("T-old")
    old.history.add(actor="op-1", action="registered").at.seconds = -2 * YEAR_10000
    fine = escalation("T-fine")
    fine.registered_at.seconds = 1_700_000_000
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=seq, body=body)
        for seq, body in ((2, late), (3, old), (4, fine))
    ]
    response = await push(stub, batch)
    assert response.acked_through_seq == 4 and response.quarantined == 2
    with hub.engine.connect() as conn:
        records = dict(
            conn.execute(
                select(Record.seq, Record.reason).where(Record.city_code == CITY, Record.seq > 1)
            ).all()
        )
        cases = conn.execute(select(DeskCase.ticket_id)).scalars().all()
        rejections = conn.execute(
            select(NoticeDelivery.notice_seq).where(NoticeDelivery.city_code == CITY)
        ).all()
    assert "registered_at" in records[2] and "Timestamp" in records[2]
    assert "history[0].at" in records[3]
    assert records[4] is None
    assert cases == ["T-fine"]
    assert len(rejections) == 2
    # A receipt's acted_at too: quarantined, not applied.
    receipt = pb.NoticeReceipt(notice_seq=rejections[0][0], action=pb.READ, actor="leader-1")
    receipt.acted_at.seconds = YEAR_10000
    response = await push(stub, [build_envelope(city_code=CITY, epoch=EPOCH, seq=5, body=receipt)])
    assert response.quarantined == 1
    with hub.engine.connect() as conn:
        read_at = conn.execute(
            select(NoticeDelivery.read_at).where(
                NoticeDelivery.notice_seq == rejections[0][0], NoticeDelivery.city_code == CITY
            )
        ).scalar_one()
        acked = conn.execute(
            select(CityLink.acked_seq).where(CityLink.city_code == CITY)
        ).scalar_one()
    assert read_at is None and acked == 5


def _link_errors(engine: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(CityLink.state, CityLink.last_error)).all())


async def test_nul_characters_are_answered_alike_on_every_engine(hub, stub):
    """A NUL (U+0000) is valid in a protobuf string; PostgreSQL's text columns refuse it."""
    hello = await stub.Hello(
        pb.HelloRequest(
            city_code=CITY, epoch=EPOCH, schema_version="1.1", software_version="0.1\x00-x"
        )
    )
    assert hello.compatible
    await push(stub, envelopes(CITY, 1, 2))
    heartbeat = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=0,
        body=pb.Heartbeat(backlog=1, last_error="timeout\x00", software_version="\x00"),
    )
    assert (await push(stub, [heartbeat])).acked_through_seq == 2
    with hub.engine.connect() as conn:
        link = conn.execute(
            select(CityLink.software_version, CityLink.city_last_error, CityLink.backlog).where(
                CityLink.city_code == CITY
            )
        ).one()
    assert tuple(link) == ("\ufffd", "timeout\ufffd", 1)

    # An epoch is an id: one holding a NUL is refused, naming it.
    before = store_state(hub.engine)
    bad_epoch = envelopes(CITY, 3, 1)
    bad_epoch[0].epoch = "e\x00"
    code, message, exc = await refused(push(stub, bad_epoch))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert isinstance(exc, errors.MalformedEnvelope) and exc.field == "envelopes[0].epoch"
    assert "NUL" in message
    assert store_state(hub.engine) == before

    # So is Hello's: compared with the link's epoch and quoted in its error, a NUL broke
    # PostgreSQL's text (a server error carrying the SQL) and a long one was kept whole.
    links_before = _link_errors(hub.engine)
    for epoch, words in (("a\x00b", "epoch contains a NUL"), ("E" * 100_000, "longer than 64")):
        code, message, exc = await refused(
            stub.Hello(pb.HelloRequest(city_code=CITY, epoch=epoch, schema_version="1.1"))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT, message
        assert isinstance(exc, errors.MalformedEnvelope) and exc.field == "epoch"
        assert words in message and len(message) < 1000
    assert _link_errors(hub.engine) == links_before
    assert store_state(hub.engine) == before

    # A body's text: the record is quarantined naming the field, the stream moves on.
    nul = escalation("T\x001")
    nul.history.add(actor="op-1", action="registered", note="called\x00back")
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=3, body=nul),
        build_envelope(city_code=CITY, epoch=EPOCH, seq=4, body=escalation("T-2")),
    ]
    response = await push(stub, batch)
    assert response.acked_through_seq == 4 and response.quarantined == 1
    with hub.engine.connect() as conn:
        stored = conn.execute(
            select(Record.seq, Record.status, Record.reason, Record.body).where(
                Record.city_code == CITY, Record.seq > 2
            )
        ).all()
        cases = conn.execute(select(DeskCase.ticket_id)).scalars().all()
    by_seq = {row.seq: row for row in stored}
    assert by_seq[3].status == "quarantined" and "ticket_id" in by_seq[3].reason
    assert "NUL" in by_seq[3].reason
    assert pb.Escalation.FromString(by_seq[3].body) == nul  # the record keeps what was sent
    assert by_seq[4].status == "accepted"
    assert cases == ["T-2"]
    # A re-send of the quarantined one is a duplicate, acknowledged again.
    again = await push(stub, batch)
    assert again.acked_through_seq == 4 and again.duplicates == 2


async def test_refusals_quoting_a_long_value_keep_their_status(hub, stub):
    """A refusal quoting the client's value whole overflowed gRPC's 16 KiB metadata cap."""
    await push(stub, envelopes(CITY, 1, 1))
    before = store_state(hub.engine)
    long = "9" * 100_000

    def check(code, message, exc, expected, field) -> None:
        assert code == expected, message
        assert "100000 characters" in message and len(message) < 1000
        assert exc is not None and exc.field == field and exc.acked_through_seq == 1

    code, message, exc = await refused(
        stub.Hello(pb.HelloRequest(city_code=long, schema_version="1.1"), timeout=10)
    )
    check(code, message, exc, grpc.StatusCode.PERMISSION_DENIED, "city_code")
    code, message, exc = await refused(push(stub, envelopes(long, 2, 1)))
    check(code, message, exc, grpc.StatusCode.PERMISSION_DENIED, "envelopes[0].city_code")
    code, message, exc = await refused(push(stub, envelopes(CITY, 2, 1, schema_version=long)))
    check(code, message, exc, grpc.StatusCode.FAILED_PRECONDITION, "envelopes[0].schema_version")
    code, message, exc = await refused(
        stub.ListHeld(pb.ListHeldRequest(city_code=long, from_seq=1), timeout=10)
    )
    check(code, message, exc, grpc.StatusCode.PERMISSION_DENIED, "city_code")
    stream = stub.Subscribe(pb.SubscribeRequest(city_code=long), timeout=10)
    code, message, exc = await refused(stream.read())
    check(code, message, exc, grpc.StatusCode.PERMISSION_DENIED, "city_code")
    assert store_state(hub.engine) == before

    # Hello with a version that is no version at all says so, briefly, and the link stores
    # no more than a status line of it.
    hello = await stub.Hello(pb.HelloRequest(city_code=CITY, epoch=EPOCH, schema_version=long))
    assert not hello.compatible
    assert "MAJOR.MINOR" in hello.message and len(hello.message) < 1000
    hello = await stub.Hello(pb.HelloRequest(city_code=CITY, epoch=EPOCH, schema_version=""))
    assert "'' is not of the form MAJOR.MINOR" in hello.message
    with hub.engine.connect() as conn:
        link = conn.execute(
            select(CityLink.schema_version, CityLink.last_error, CityLink.state).where(
                CityLink.city_code == CITY
            )
        ).one()
    assert link.state == "incompatible"
    assert len(link.last_error) < 2000


async def test_list_held_refusals_carry_the_hubs_mark(hub, stub):
    """Every refusal of a city the hub has heard from states its mark and epoch; a from_seq
    the store cannot hold is refused too (it was an unexpected server error)."""
    await push(stub, envelopes(CITY, 1, 3))
    for request, field in (
        (pb.ListHeldRequest(city_code=CITY, from_seq=0), "from_seq"),
        (pb.ListHeldRequest(city_code=CITY, from_seq=2**63), "from_seq"),
        (pb.ListHeldRequest(city_code=CITY, from_seq=2**64 - 1), "from_seq"),
        (pb.ListHeldRequest(city_code=CITY, from_seq=3, through_seq=2), "through_seq"),
        (pb.ListHeldRequest(city_code="620200", from_seq=1), "city_code"),
    ):
        code, message, exc = await refused(stub.ListHeld(request, timeout=10))
        assert code == grpc.StatusCode.INVALID_ARGUMENT or field == "city_code", message
        assert exc is not None and exc.field == field, message
        assert (exc.acked_through_seq, exc.hub_epoch) == (3, EPOCH)


async def test_long_text_in_a_records_subject_never_blocks_the_stream(hub, stub):
    """What a record is about (records.subject) is indexed: PostgreSQL refused an entry of
    10 kB of varied text, failing the whole Push with an unexpected error on every retry."""
    await push(stub, envelopes(CITY, 1, 1))
    varied = "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(10_000))
    long_ticket = escalation(varied)
    long_date = pb.SuggestionBatch(
        batch_date=varied,
        batch_number=1,
        suggestions=[pb.Suggestion(ticket_id="S-1", content="more evening hours")],
    )
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=2, body=long_ticket),
        build_envelope(city_code=CITY, epoch=EPOCH, seq=3, body=long_date),
        build_envelope(city_code=CITY, epoch=EPOCH, seq=4, body=escalation("T-" + "9" * 62)),
    ]
    response = await push(stub, batch)
    assert response.acked_through_seq == 4 and response.quarantined == 2
    with hub.engine.connect() as conn:
        stored = {
            row.seq: row
            for row in conn.execute(
                select(Record.seq, Record.status, Record.reason, Record.subject).where(
                    Record.city_code == CITY, Record.seq > 1
                )
            )
        }
        cases = conn.execute(select(DeskCase.ticket_id)).scalars().all()
    assert stored[2].status == "quarantined"
    assert stored[2].reason == "ticket_id is 10000 characters; at most 64"
    assert stored[3].status == "quarantined" and "batch_date" in stored[3].reason
    assert len(stored[3].subject) <= 256
    assert stored[4].status == "accepted" and stored[4].subject == "escalation/T-" + "9" * 62
    assert cases == ["T-" + "9" * 62]


async def test_an_escalation_from_a_clock_ahead_is_not_younger_than_its_arrival(hub, stub):
    envelope = build_envelope(city_code=CITY, epoch=EPOCH, seq=1, body=escalation("T-ahead"))
    envelope.created_at.seconds += 5 * 365 * 86400  # a city clock five years ahead
    await push(stub, [envelope])
    with hub.engine.connect() as conn:
        case = conn.execute(select(DeskCase.escalated_at, DeskCase.received_at)).one()
    assert case.escalated_at == case.received_at


async def test_a_refused_body_far_over_any_limit_is_not_kept_whole(hub, stub, monkeypatch):
    """A QA report whose findings run past the cap a quarantined record keeps is quarantined
    naming the field (the city is told the rule, as ever), but the hub keeps its record
    without the body: one city must not grow the hub's store by a message's size with every
    push. A refused body under the cap is kept. (The cap is lowered here to fit this hub's
    message limit; the hub's own is 1 MiB.)"""
    from province_hub import ingest
    from province_hub.store import Notice

    assert ingest.MAX_QUARANTINED_BODY_BYTES == 1 << 20
    monkeypatch.setattr(ingest, "MAX_QUARANTINED_BODY_BYTES", 100_000)

    def qa(findings: str) -> pb.QaReport:
        return pb.QaReport(
            period=pb.Period(kind=pb.DAY, start="2026-11-20"),
            revision=1,
            sampled=1,
            passed=1,
            inspector="qa-1",
            findings=findings,
        )

    huge = "x" * 200_000
    batch = [
        build_envelope(city_code=CITY, epoch=EPOCH, seq=1, body=qa(huge)),
        build_envelope(city_code=CITY, epoch=EPOCH, seq=2, body=qa("y" * 20_001)),
    ]
    response = await push(stub, batch)
    assert response.acked_through_seq == 2 and response.quarantined == 2
    with hub.engine.connect() as conn:
        stored = {
            r.seq: r
            for r in conn.execute(
                select(Record.seq, Record.reason, Record.body, Record.digest).where(
                    Record.city_code == CITY
                )
            )
        }
        said = [
            pb.Notice.FromString(p).rejection.reason
            for p in conn.execute(select(Notice.payload).order_by(Notice.seq)).scalars()
        ]
    assert bytes(stored[1].body) == b"" and bytes(stored[1].digest) == batch[0].content_digest
    size = batch[0].qa_report.ByteSize()
    assert stored[1].reason == (
        f"findings is 200000 characters; at most 20000 (its body, {size:,} bytes, is not "
        "kept: over 100,000)"
    )
    assert len(bytes(stored[2].body)) > 20_000 and "not kept" not in stored[2].reason
    assert said[0].startswith("findings is") and "not kept" not in said[0]
    # Sent again, the refused one is a duplicate (its digest is kept), acknowledged again.
    again = await push(stub, batch[:1])
    assert again.duplicates == 1


async def test_a_hello_the_hub_finds_in_conflict_or_ahead_says_so(hub, stub):
    """The hub recorded the conflict for its own status, but answered OK with no message:
    a client that only says hello (nothing to push) never learnt it."""
    await push(stub, envelopes(CITY, 1, 3))
    ok = await stub.Hello(
        pb.HelloRequest(
            city_code=CITY,
            epoch=EPOCH,
            schema_version=SCHEMA_VERSION,
            delivered_through_seq=3,
            last_assigned_seq=3,
        )
    )
    assert ok.compatible and ok.message == ""
    restored = await stub.Hello(
        pb.HelloRequest(
            city_code=CITY,
            epoch=EPOCH,
            schema_version=SCHEMA_VERSION,
            delivered_through_seq=1,
            last_assigned_seq=1,
        )
    )
    assert restored.acked_through_seq == 3
    assert restored.message.startswith("SequenceConflict: city") and "rebase" in restored.message
    ahead = await stub.Hello(
        pb.HelloRequest(
            city_code=CITY,
            epoch=EPOCH,
            schema_version=SCHEMA_VERSION,
            delivered_through_seq=9,
            last_assigned_seq=9,
        )
    )
    assert "delivered up to seq 9; this hub holds up to 3" in ahead.message
