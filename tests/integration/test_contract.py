"""The wire contract as a client in another language meets it, over real mutual TLS.

The envelopes in ``tests/fixtures/foreign`` were written by protobufjs (node), with their
digests computed by node's crypto; ``make_envelopes.js`` there says how to re-make them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_status import rpc_status
from sqlalchemy import func, select

from province_hub.store import CityLink, NoticeDelivery, Record
from sync import errors
from sync.envelopes import build_envelope
from sync.link import encode_push_request, make_channel
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import load_city_tls
from sync.rpc_errors import from_rpc_error
from sync.validation import INT64_MAX
from sync.version import SCHEMA_VERSION
from tests.conftest import ROSTER_CODES

FOREIGN = Path(__file__).parent.parent / "fixtures" / "foreign"
CITY, OTHER = ROSTER_CODES[0], ROSTER_CODES[1]
EPOCH = "c" * 32


@pytest.fixture
async def hub(databases, hub_settings_factory, start_hub):
    # Some tests fire all their refusals at once, more calls than a city ever has in flight.
    return await start_hub(
        hub_settings_factory(databases("hub"), max_batch=50, max_calls_per_city=16)
    )


@pytest.fixture
async def channel(hub, pki_dir):
    async with make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY)) as channel:
        yield channel


@pytest.fixture
def stub(channel):
    return pb_grpc.FederationStub(channel)


def raw_push(channel: grpc.aio.Channel) -> grpc.aio.UnaryUnaryMultiCallable:
    """Push with request bytes as given: what a foreign encoder wrote reaches the hub as is."""
    return channel.unary_unary(
        "/fedsync.v1.Federation/Push", response_deserializer=pb.PushResponse.FromString
    )


def records(engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(Record.seq, Record.kind, Record.status, Record.reason, Record.digest)
                .where(Record.city_code == CITY)
                .order_by(Record.seq)
            )
        ]


def suggestion_envelope(seq: int, epoch: str = EPOCH) -> pb.Envelope:
    body = pb.SuggestionBatch(
        batch_date="2026-01-05",
        batch_number=seq,
        suggestions=[pb.Suggestion(ticket_id=f"S-{seq}", content="more evening hours")],
    )
    return build_envelope(city_code=CITY, epoch=epoch, seq=seq, body=body)


async def refusal(call) -> tuple[grpc.StatusCode, str, pb.SyncError | None]:
    """Status code, message and the raw ``SyncError`` detail of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    status = rpc_status.from_call(info.value)
    detail = None
    if status is not None:
        for any_detail in status.details:
            candidate = pb.SyncError()
            if any_detail.Unpack(candidate):
                detail = candidate
    return info.value.code(), info.value.details() or "", detail


# --- digests over the bytes as they travel ------------------------------------------------------


async def test_envelopes_written_by_protobufjs_are_accepted_once(hub, channel):
    request = (FOREIGN / "push_default_fields.bin").read_bytes()
    manifest = json.loads((FOREIGN / "push_default_fields.json").read_text())
    assert manifest["city_code"] == CITY
    expected = manifest["envelopes"]
    # The fixture proves something only if Python's re-encoding differs from what node wrote
    # (protobufjs writes the explicit defaults, Python drops them): under the old rule, a
    # digest over the hub's re-encoding, these envelopes were refused.
    parsed = pb.PushRequest.FromString(request)
    for envelope, written in zip(parsed.envelopes, expected, strict=True):
        body = getattr(envelope, written["kind"])
        reencoded = body.SerializeToString(deterministic=True)
        assert reencoded != bytes.fromhex(written["body_hex"])
        assert hashlib.sha256(reencoded).digest() != envelope.content_digest
        assert envelope.content_digest.hex() == written["digest_hex"]
    assert parsed.envelopes[0].suggestion_batch.classified_by == ""

    push = raw_push(channel)
    first = await push(request, timeout=10)
    assert (first.acked_through_seq, first.duplicates, first.quarantined) == (2, 0, 0)
    held = records(hub.engine)
    assert [(seq, kind, status) for seq, kind, status, _, _ in held] == [
        (1, "suggestion_batch", "accepted"),
        (2, "escalation", "accepted"),
    ]
    with hub.engine.connect() as conn:
        bodies = conn.execute(
            select(Record.body).where(Record.city_code == CITY).order_by(Record.seq)
        ).scalars()
        # The hub stores the bytes as they travelled, which are what the digest covers.
        assert [bytes(b).hex() for b in bodies] == [e["body_hex"] for e in expected]
    assert [digest.hex() for *_, digest in held] == [e["digest_hex"] for e in expected]

    again = await push(request, timeout=10)
    assert (again.acked_through_seq, again.duplicates) == (2, 2)
    assert records(hub.engine) == held
    # And a Python city goes on after it, as usual.
    after = await push(
        encode_push_request([suggestion_envelope(3, manifest["epoch"]).SerializeToString()]),
        timeout=10,
    )
    assert after.acked_through_seq == 3


def rehash(envelope: pb.Envelope) -> None:
    """Set ``envelope``'s digest to the one over its body's canonical bytes."""
    body = getattr(envelope, str(envelope.WhichOneof("body")))
    envelope.content_digest = hashlib.sha256(body.SerializeToString(deterministic=True)).digest()


async def test_a_resend_hashed_the_other_valid_way_is_the_same_envelope(hub, channel):
    """protobufjs's bytes hashed as sent, then the same bodies re-sent hashed canonically (a
    sender that re-encodes on retry): each body has two valid digests, and the hub holds
    the same envelope at each seq — a re-send, not a restored store's other content."""
    request = (FOREIGN / "push_default_fields.bin").read_bytes()
    push = raw_push(channel)
    assert (await push(request, timeout=10)).acked_through_seq == 2
    held = records(hub.engine)
    again = pb.PushRequest.FromString(request)
    for envelope in again.envelopes:
        rehash(envelope)
    assert [e.content_digest for e in again.envelopes] != [d for *_, d in held]
    answer = await push(again.SerializeToString(), timeout=10)
    assert (answer.acked_through_seq, answer.duplicates, answer.quarantined) == (2, 2, 0)
    assert records(hub.engine) == held  # the first digests and bytes are kept
    # Other content under a held seq is still a conflict, whichever way it is hashed.
    other = pb.PushRequest.FromString(again.SerializeToString())
    other.envelopes[0].suggestion_batch.batch_number += 1
    rehash(other.envelopes[0])
    code, _message, detail = await refusal(push(other.SerializeToString(), timeout=10))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert detail is not None and detail.seq == 1
    assert records(hub.engine) == held


async def test_a_digest_over_other_bytes_than_those_sent_is_refused(hub, channel):
    request = pb.PushRequest.FromString((FOREIGN / "push_default_fields.bin").read_bytes())
    # Re-encoded by Python, the bodies lose the explicit defaults the digests were taken over.
    code, message, detail = await refusal(
        raw_push(channel)(request.SerializeToString(), timeout=10)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "envelopes[0].content_digest does not match" in message
    assert detail is not None and detail.field == "envelopes[0].content_digest"
    assert records(hub.engine) == []


async def test_bytes_that_are_not_wire_format_are_refused_naming_the_envelope(hub, channel):
    good = suggestion_envelope(1).SerializeToString()
    # A body whose length runs past the end of its envelope.
    bad = b"\x0a\x06" + CITY.encode() + b"\x6a\x40" + b"short"
    code, message, detail = await refusal(
        raw_push(channel)(encode_push_request([good, bad]), timeout=10)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert "envelopes[1]" in message and "wire format" in message
    assert detail is not None and detail.field == "envelopes[1]"
    # Well framed, but a string that is not UTF-8: protobuf's parser refuses it; the hub still
    # names the envelope.
    bad_text = b"\x0a\x02\xff\xfe"
    code, message, detail = await refusal(
        raw_push(channel)(encode_push_request([good, good, bad_text]), timeout=10)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert detail is not None and detail.field == "envelopes[2]"
    assert records(hub.engine) == []


# --- what every refusal tells the city -----------------------------------------------------------


async def test_every_refusal_states_the_hubs_mark_and_epoch(hub, stub, channel):
    ack = await stub.Push(
        pb.PushRequest(envelopes=[suggestion_envelope(1), suggestion_envelope(2)]), timeout=10
    )
    assert ack.acked_through_seq == 2
    bad_digest = suggestion_envelope(3)
    bad_digest.content_digest = b"\x00" * 32
    other_major = suggestion_envelope(3)
    other_major.schema_version = "2.0"
    impostor = suggestion_envelope(3)
    impostor.city_code = OTHER
    cases = {
        "MALFORMED_ENVELOPE": stub.Push(pb.PushRequest(envelopes=[bad_digest]), timeout=10),
        "SCHEMA_UNSUPPORTED": stub.Push(pb.PushRequest(envelopes=[other_major]), timeout=10),
        "IDENTITY_MISMATCH": stub.Push(pb.PushRequest(envelopes=[impostor]), timeout=10),
        "BATCH_TOO_LARGE": stub.Push(
            pb.PushRequest(envelopes=[suggestion_envelope(n) for n in range(3, 54)]), timeout=10
        ),
        "hello IDENTITY_MISMATCH": stub.Hello(
            pb.HelloRequest(city_code=OTHER, epoch=EPOCH, schema_version=SCHEMA_VERSION)
        ),
        "wire MALFORMED_ENVELOPE": raw_push(channel)(b"\x0a\x05abc", timeout=10),
    }
    for name, call in cases.items():
        _, message, detail = await refusal(call)
        assert detail is not None, name
        reason = name.split()[-1]
        assert pb.SyncError.Reason.Name(detail.reason) == reason, (name, message)
        assert (detail.acked_through_seq, detail.hub_epoch) == (2, EPOCH), (name, message)
        # expected_seq belongs to gaps only.
        assert detail.expected_seq == 0, name
    # A gap still says where to resume.
    code, _, detail = await refusal(
        stub.Push(pb.PushRequest(envelopes=[suggestion_envelope(9)]), timeout=10)
    )
    assert code == grpc.StatusCode.OUT_OF_RANGE
    assert detail is not None and (detail.acked_through_seq, detail.expected_seq) == (2, 3)
    assert len(records(hub.engine)) == 2


async def test_subscribe_without_a_city_code_is_refused(hub, stub):
    await stub.Push(pb.PushRequest(envelopes=[suggestion_envelope(1)]), timeout=10)
    for code_sent in ("", OTHER):
        stream = stub.Subscribe(pb.SubscribeRequest(city_code=code_sent), timeout=10)
        code, message, _ = await refusal(_first(stream))
        assert code == grpc.StatusCode.PERMISSION_DENIED, message
        assert "certificate" in message and CITY in message
    # The structured detail, as the city's client decodes it.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _first(stub.Subscribe(pb.SubscribeRequest(), timeout=10))
    exc = from_rpc_error(info.value)
    assert isinstance(exc, errors.IdentityMismatch) and exc.field == "city_code"
    assert (exc.acked_through_seq, exc.hub_epoch) == (1, EPOCH)
    # A cursor beyond what a notice seq can be is refused, not an internal error.
    code, message, _ = await refusal(
        _first(stub.Subscribe(pb.SubscribeRequest(city_code=CITY, after_notice_seq=2**64 - 1)))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "after_notice_seq" in message
    # ... with the structured detail every refusal of a known city carries.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _first(stub.Subscribe(pb.SubscribeRequest(city_code=CITY, after_notice_seq=2**63)))
    exc = from_rpc_error(info.value)
    assert isinstance(exc, errors.MalformedEnvelope) and exc.field == "after_notice_seq"
    assert (exc.acked_through_seq, exc.hub_epoch) == (1, EPOCH)


async def _first(stream: AsyncIterable[pb.Notice]) -> pb.Notice | None:
    async for notice in stream:
        return notice
    return None


# --- 64-bit values the store cannot hold -------------------------------------------------------


async def test_uint64_beyond_int64_quarantines_the_record_and_the_stream_moves_on(
    hub, stub, caplog
):
    receipt = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=2,
        body=pb.NoticeReceipt(notice_seq=2**64 - 1, action=pb.READ, actor="op1"),
    )
    trace = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=3,
        body=pb.TicketTrace(request_notice_seq=2**63, ticket_id="T-1", found=False),
    )
    heartbeat = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=0,
        body=pb.Heartbeat(backlog=2**64 - 1, oldest_unsent_age_seconds=7, notice_cursor=2**63),
    )
    batch = [heartbeat, suggestion_envelope(1), receipt, trace, suggestion_envelope(4)]
    with caplog.at_level(logging.WARNING, logger="province_hub.services"):
        ack = await stub.Push(pb.PushRequest(envelopes=batch), timeout=10)
    assert (ack.acked_through_seq, ack.quarantined) == (4, 2)
    held = {seq: (kind, status, reason) for seq, kind, status, reason, _ in records(hub.engine)}
    assert held[1][1] == held[4][1] == "accepted"
    assert held[2][:2] == ("notice_receipt", "quarantined")
    assert held[2][2].startswith(f"notice_seq is {2**64 - 1}, above {INT64_MAX}")
    assert held[3][:2] == ("ticket_trace", "quarantined")
    assert "request_notice_seq" in held[3][2]
    # The heartbeat's values were clamped, with a warning naming them, never an error.
    with hub.engine.connect() as conn:
        link = conn.execute(
            select(CityLink.backlog, CityLink.oldest_unsent_age_s, CityLink.notice_cursor).where(
                CityLink.city_code == CITY
            )
        ).one()
    # Counts clamped; the cursor ignored, so the hub does not take every notice as delivered.
    assert tuple(link) == (INT64_MAX, 7, 0)
    with hub.engine.connect() as conn:
        delivered = conn.execute(
            select(NoticeDelivery.delivered_at).where(NoticeDelivery.city_code == CITY)
        ).scalars()
        assert list(delivered) == [None, None]  # the two REJECTION notices
    assert any("backlog, notice_cursor" in r.getMessage() for r in caplog.records)
    # The city is told, and its next envelopes go in.
    notices = await _first(stub.Subscribe(pb.SubscribeRequest(city_code=CITY), timeout=10))
    assert notices is not None and notices.kind == pb.REJECTION
    assert notices.rejection.seq == 2 and "notice_seq" in notices.rejection.reason
    ack = await stub.Push(pb.PushRequest(envelopes=[suggestion_envelope(5)]), timeout=10)
    assert (ack.acked_through_seq, ack.quarantined) == (5, 0)
    with hub.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(Record)).scalar_one()
    assert count == 5


async def test_an_envelope_seq_beyond_int64_is_refused_naming_it(hub, stub):
    huge = suggestion_envelope(1)
    huge.seq = 2**63
    code, message, detail = await refusal(stub.Push(pb.PushRequest(envelopes=[huge]), timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "seq" in message
    assert detail is not None and detail.field == "envelopes[0].seq"
    assert records(hub.engine) == []


# --- refused handshakes, as the README tells them apart -----------------------------------------


async def test_refused_handshakes_differ_from_a_hub_that_is_down(
    hub, pki_dir, tmp_path: Path, capfd
):
    from sync.pki import init_pki

    good = load_city_tls(pki_dir, CITY)
    foreign_dir = tmp_path / "foreign-pki"
    init_pki(foreign_dir, city_codes=[CITY])
    foreign = load_city_tls(foreign_dir, CITY)
    hello = pb.HelloRequest(city_code=CITY, schema_version=SCHEMA_VERSION)

    async def details(channel) -> str:
        async with channel:
            code, message, _ = await refusal(
                pb_grpc.FederationStub(channel).Hello(hello, timeout=5)
            )
        assert code == grpc.StatusCode.UNAVAILABLE
        return message

    address = f"127.0.0.1:{hub.port}"
    capfd.readouterr()
    another_ca = await details(
        make_channel(
            address,
            good.__class__(
                ca_cert=good.ca_cert, cert_chain=foreign.cert_chain, private_key=foreign.private_key
            ),
        )
    )
    hub_log = capfd.readouterr().err
    assert "Handshake failed" in hub_log and "CERTIFICATE_VERIFY_FAILED" in hub_log
    no_certificate = await details(
        grpc.aio.secure_channel(
            address, grpc.ssl_channel_credentials(root_certificates=good.ca_cert)
        )
    )
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in capfd.readouterr().err
    # A port nobody listens on: the hub is down.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    down = await details(make_channel(f"127.0.0.1:{closed}", good))
    assert "Socket closed" in another_ca and "Socket closed" in no_certificate
    assert "Connection refused" in down and "Socket closed" not in down
    # None of them reached the hub's link table.
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CityLink)).scalar_one() == 0
