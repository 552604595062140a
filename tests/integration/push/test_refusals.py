"""What the hub refuses, with which status and message — and that nothing is stored then."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from province_hub.store import CityLink
from sync import errors
from sync.envelopes import build_envelope, digest
from sync.link import encode_push_request, make_channel
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import PkiError, init_pki, issue_city, load_city_tls, revoke
from sync.version import SCHEMA_VERSION
from tests.integration.push.support import (
    CITY,
    EPOCH,
    OTHER,
    envelopes,
    push,
    refused,
    store_state,
    suggestion,
)


async def test_accepted_batch_then_duplicate_is_reacked_and_changes_nothing(hub, stub):
    batch = envelopes(CITY, 1, 5)
    first = await push(stub, batch)
    assert first.acked_through_seq == 5 and first.duplicates == 0
    before = store_state(hub.engine)
    again = await push(stub, batch)
    assert again.acked_through_seq == 5 and again.duplicates == 5
    assert store_state(hub.engine) == before
    # Overlap: 4..7 — the old two re-acked, the new two stored.
    overlap = await push(stub, envelopes(CITY, 4, 4))
    assert overlap.acked_through_seq == 7 and overlap.duplicates == 2
    # Re-sending only old envelopes acks what was sent, not the hub's mark: the city's later
    # rows must still meet the digest check.
    old_only = await push(stub, envelopes(CITY, 1, 2))
    assert old_only.acked_through_seq == 2 and old_only.duplicates == 2


async def test_impersonation_is_permission_denied(hub, stub):
    await push(stub, envelopes(CITY, 1, 2))
    before = store_state(hub.engine)
    code, message, exc = await refused(push(stub, envelopes(OTHER, 1, 1)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert OTHER in message and CITY in message and "own name" in message
    assert isinstance(exc, errors.IdentityMismatch) and exc.field == "envelopes[0].city_code"
    # One foreign envelope in an otherwise good batch spoils the whole batch.
    mixed = envelopes(CITY, 3, 2) + envelopes(OTHER, 5, 1)
    code, _, _ = await refused(push(stub, mixed))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, message, _ = await refused(
        stub.Hello(pb.HelloRequest(city_code=OTHER, epoch=EPOCH, schema_version=SCHEMA_VERSION))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and OTHER in message
    assert store_state(hub.engine) == before


async def test_plaintext_client_cannot_talk_to_the_hub(hub):
    before = store_state(hub.engine)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{hub.port}") as channel:
        code, _, _ = await refused(
            pb_grpc.FederationStub(channel).Hello(pb.HelloRequest(city_code=CITY), timeout=5)
        )
    assert code == grpc.StatusCode.UNAVAILABLE
    assert store_state(hub.engine) == before


async def test_client_certificate_of_another_ca_is_refused(hub, tmp_path: Path):
    foreign = tmp_path / "foreign-pki"
    init_pki(foreign, city_codes=[CITY])
    tls = load_city_tls(foreign, CITY)
    # Trust the real hub, but present a certificate the province CA never signed.
    channel = make_channel(
        f"127.0.0.1:{hub.port}",
        tls.__class__(
            ca_cert=(hub_ca := _hub_ca(hub)), cert_chain=tls.cert_chain, private_key=tls.private_key
        ),
    )
    assert hub_ca
    async with channel:
        code, _, _ = await refused(
            pb_grpc.FederationStub(channel).Hello(pb.HelloRequest(city_code=CITY), timeout=5)
        )
    assert code == grpc.StatusCode.UNAVAILABLE
    assert store_state(hub.engine)[0] == 0


def _hub_ca(hub) -> bytes:
    return (Path(hub.settings.pki_dir) / "ca.crt").read_bytes()


async def test_unknown_schema_major_is_failed_precondition(hub, stub):
    before = store_state(hub.engine)
    code, message, exc = await refused(push(stub, envelopes(CITY, 1, 1, schema_version="2.0")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "2.0" in message and SCHEMA_VERSION in message
    assert isinstance(exc, errors.SchemaUnsupported)
    hello = await stub.Hello(pb.HelloRequest(city_code=CITY, epoch=EPOCH, schema_version="2.3"))
    assert not hello.compatible and "2.3" in hello.message
    with hub.engine.connect() as conn:
        state = conn.execute(select(CityLink.state).where(CityLink.city_code == CITY)).scalar_one()
    assert state == "incompatible"
    assert store_state(hub.engine)[0] == before[0]


async def test_oversized_batch_is_resource_exhausted(hub, stub):
    before = store_state(hub.engine)
    code, message, exc = await refused(push(stub, envelopes(CITY, 1, 51)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "51" in message and "50" in message
    assert isinstance(exc, errors.BatchTooLarge)
    # Over the message-size limit (1 MiB here): refused by the transport before any work.
    big = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=1,
        body=pb.SuggestionBatch(
            batch_date="2026-01-05",
            batch_number=1,
            suggestions=[pb.Suggestion(ticket_id="S", content="x" * (2 * 1024 * 1024))],
        ),
    )
    code, message, exc = await refused(push(stub, [big]))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    # gRPC refuses it before the hub sees the call: its own words, no SyncError details.
    assert "larger than max" in message and str(1024 * 1024) in message
    assert exc is None
    assert store_state(hub.engine) == before


@pytest.mark.parametrize(
    ("mangle", "field", "words"),
    [
        (lambda e: e.ClearField("suggestion_batch"), "envelopes[1].body", "no body"),
        (
            lambda e: setattr(e, "content_digest", digest(suggestion(999))),
            "envelopes[1].content_digest",
            "does not match",
        ),
        (
            lambda e: setattr(e, "content_digest", b"short"),
            "envelopes[1].content_digest",
            "32 bytes",
        ),
        (lambda e: setattr(e, "seq", 0), "envelopes[1].seq", "seq 0"),
        (lambda e: setattr(e, "seq", 7), "envelopes[1].seq", "consecutive"),
        (lambda e: setattr(e, "epoch", ""), "envelopes[1].epoch", "no epoch"),
    ],
    ids=["no-body", "wrong-digest", "short-digest", "seq-zero", "not-consecutive", "no-epoch"],
)
async def test_malformed_envelope_is_invalid_argument_naming_the_field(
    hub, stub, mangle, field, words
):
    batch = envelopes(CITY, 1, 3)
    mangle(batch[1])
    before = store_state(hub.engine)
    code, message, exc = await refused(push(stub, batch))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert words in message
    assert isinstance(exc, errors.MalformedEnvelope) and exc.field == field
    assert store_state(hub.engine) == before


async def test_unparseable_push_is_invalid_argument(hub, stub, pki_dir):
    channel = make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY))
    async with channel:
        raw = channel.unary_unary(
            "/fedsync.v1.Federation/Push", response_deserializer=pb.PushResponse.FromString
        )
        code, message, _ = await refused(raw(b"\x0a\xff\xff\xff\x0f garbage", timeout=5))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, message
        assert "PushRequest" in message
        # A batch whose envelopes are valid bytes passes the same door.
        ok = await raw(
            encode_push_request([e.SerializeToString() for e in envelopes(CITY, 1, 2)]), timeout=5
        )
        assert ok.acked_through_seq == 2


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("Hello", "HelloRequest"),
        ("ListHeld", "ListHeldRequest"),
        ("Subscribe", "SubscribeRequest"),
    ],
)
async def test_unparseable_requests_carry_the_hubs_mark_too(hub, stub, pki_dir, method, message):
    """As an unparseable Push does: a SyncError naming the message, with the mark and epoch
    the hub holds for the calling city (they came without any details)."""
    await push(stub, envelopes(CITY, 1, 2))
    channel = make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY))
    async with channel:
        bad = b"\x0a\x03\xff\xfe\xfd"  # field 1 (a string) that is no UTF-8
        if method == "Subscribe":
            call = channel.unary_stream(f"/fedsync.v1.Federation/{method}")(bad, timeout=5)
            code, text, exc = await refused(call.read())
        else:
            call = channel.unary_unary(f"/fedsync.v1.Federation/{method}")(bad, timeout=5)
            code, text, exc = await refused(call)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message in text
    assert isinstance(exc, errors.MalformedEnvelope) and exc.field == message
    assert (exc.acked_through_seq, exc.hub_epoch) == (2, EPOCH)


OFF_ROSTER = "999999"


async def test_revoked_certificate_is_unauthenticated(
    databases, hub_settings_factory, start_hub, tmp_path: Path
):
    own_pki = tmp_path / "pki"
    init_pki(own_pki, city_codes=[CITY, OTHER])
    hub = await start_hub(hub_settings_factory(databases("hub"), pki_dir=own_pki))
    channel = make_channel(f"127.0.0.1:{hub.port}", load_city_tls(own_pki, CITY))
    async with channel:
        stub = pb_grpc.FederationStub(channel)
        assert (await push(stub, envelopes(CITY, 1, 1))).acked_through_seq == 1
        stream = stub.Subscribe(pb.SubscribeRequest(city_code=CITY))
        issue_city(own_pki, OFF_ROSTER)  # a code the CA signed but the hub's roster lacks
        revoke(own_pki, code=OFF_ROSTER, reason="keyCompromise")
        serial = revoke(own_pki, code=CITY, reason="keyCompromise")
        # A stream opened before the revocation is cut off too.
        code, message, _ = await refused(asyncio.wait_for(_drain(stream), timeout=10))
        assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in message
        await asyncio.sleep(1.2)  # the hub re-reads a changed CRL within a second
        before = store_state(hub.engine)
        code, message, exc = await refused(push(stub, envelopes(CITY, 2, 1)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert str(serial) in message and "revoked" in message
    assert isinstance(exc, errors.CertificateRevoked)
    after = store_state(hub.engine)
    assert after[0] == before[0] == 1
    with hub.engine.connect() as conn:
        state = conn.execute(select(CityLink.state).where(CityLink.city_code == CITY)).scalar_one()
    assert state == "revoked"
    # The other city is unaffected.
    async with make_channel(f"127.0.0.1:{hub.port}", load_city_tls(own_pki, OTHER)) as other:
        ack = await push(pb_grpc.FederationStub(other), envelopes(OTHER, 1, 1))
    assert ack.acked_through_seq == 1
    # A revoked certificate of a code not on the roster is refused and leaves no link row
    # (it would show as one more city on `hub status`).
    async with make_channel(
        f"127.0.0.1:{hub.port}", load_city_tls(own_pki, OFF_ROSTER)
    ) as stranger:
        code, message, _ = await refused(
            push(pb_grpc.FederationStub(stranger), envelopes(OFF_ROSTER, 1, 1))
        )
    assert code == grpc.StatusCode.UNAUTHENTICATED and "revoked" in message
    with hub.engine.connect() as conn:
        links = conn.execute(select(CityLink.city_code)).scalars().all()
    assert OFF_ROSTER not in links and sorted(links) == sorted([CITY, OTHER])


async def _drain(stream) -> None:
    async for _ in stream:
        pass


async def test_hub_does_not_start_without_a_revocation_list(
    databases, hub_settings_factory, start_hub, tmp_path: Path
):
    own_pki = tmp_path / "pki"
    init_pki(own_pki, city_codes=[CITY])
    (own_pki / "crl.pem").unlink()
    with pytest.raises(PkiError, match=r"crl\.pem"):
        await start_hub(hub_settings_factory(databases("hub"), pki_dir=own_pki))
