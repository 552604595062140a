"""Promises of the hub's gRPC port, over real mutual TLS with real certificates.

- A revoked certificate gets nothing from the port: not Federation, not health, not
  reflection.
- An older revocation list put back in place of a newer one changes nothing (the newer one is
  kept and the substitution logged).
- A city refuses a hub whose certificate is revoked, from the CRL in its own PKI directory.
- One city cannot make the hub hold more than ``max_calls_per_city`` calls at once.
- A heartbeat's free text is stored cut to 1 KiB.
- The default message cap holds the largest real batch and refuses anything larger.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from sqlalchemy import select

from benchmarks.message_size import measure
from province_hub.settings import HubSettings
from province_hub.store import CityLink, Record
from sync.envelopes import build_envelope
from sync.limits import MAX_HEARTBEAT_TEXT_CHARS
from sync.link import make_channel
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import identity_from_pem, init_pki, load_city_tls, revoke
from tests.conftest import ROSTER_CODES, wait_until

CITY, OTHER = ROSTER_CODES[0], ROSTER_CODES[1]
EPOCH = "5" * 32


def suggestion(seq: int) -> pb.Envelope:
    body = pb.SuggestionBatch(
        batch_date="2026-01-05",
        batch_number=seq,
        suggestions=[pb.Suggestion(ticket_id=f"S-{seq}", content="more evening hours")],
    )
    return build_envelope(city_code=CITY, epoch=EPOCH, seq=seq, body=body)


async def code_of(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def reflection_code(channel) -> grpc.StatusCode:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    try:
        async for _ in stub.ServerReflectionInfo(iter([request]), timeout=5):
            pass
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def every_service(channel) -> dict[str, grpc.StatusCode]:
    health = health_pb2_grpc.HealthStub(channel)
    federation = pb_grpc.FederationStub(channel)
    return {
        "health": await code_of(health.Check(health_pb2.HealthCheckRequest(), timeout=5)),
        "reflection": await reflection_code(channel),
        "federation": await code_of(
            federation.Push(pb.PushRequest(envelopes=[suggestion(1)]), timeout=5)
        ),
    }


@pytest.fixture
def own_pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    init_pki(directory, city_codes=[CITY, OTHER])
    return directory


async def test_a_revoked_certificate_is_refused_by_every_service_on_the_port(
    databases, hub_settings_factory, start_hub, own_pki
):
    hub = await start_hub(hub_settings_factory(databases("hub"), pki_dir=own_pki))
    address = f"127.0.0.1:{hub.port}"
    async with make_channel(address, load_city_tls(own_pki, CITY)) as channel:
        assert set((await every_service(channel)).values()) == {grpc.StatusCode.OK}
    revoke(own_pki, code=CITY, reason="keyCompromise")
    await asyncio.sleep(1.2)  # the hub re-reads a changed CRL within a second
    async with make_channel(address, load_city_tls(own_pki, CITY)) as channel:
        codes = await every_service(channel)
    assert codes == dict.fromkeys(codes, grpc.StatusCode.UNAUTHENTICATED)
    # Another city's certificate still gets every service.
    async with make_channel(address, load_city_tls(own_pki, OTHER)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert await code_of(health.Check(health_pb2.HealthCheckRequest(), timeout=5)) == (
            grpc.StatusCode.OK
        )
        assert await reflection_code(channel) == grpc.StatusCode.OK


async def test_an_older_revocation_list_cannot_replace_a_newer_one(
    databases, hub_settings_factory, start_hub, own_pki, caplog
):
    hub = await start_hub(hub_settings_factory(databases("hub"), pki_dir=own_pki))
    address = f"127.0.0.1:{hub.port}"
    older = own_pki.parent / "crl-number-1.pem"
    shutil.copy(own_pki / "crl.pem", older)
    revoke(own_pki, code=CITY)
    await asyncio.sleep(1.2)
    async with make_channel(address, load_city_tls(own_pki, CITY)) as channel:
        assert set((await every_service(channel)).values()) == {grpc.StatusCode.UNAUTHENTICATED}
        # A validly signed but older list (number 1, before the revocation) put back.
        shutil.copy(older, own_pki / "crl.pem")
        await asyncio.sleep(1.2)
        with caplog.at_level(logging.ERROR, logger="sync.pki"):
            codes = await every_service(channel)
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}
    assert any("older list" in r.getMessage() for r in caplog.records)


async def test_a_city_refuses_a_hub_whose_certificate_is_revoked(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city, own_pki
):
    hub_serial = identity_from_pem((own_pki / "hub.crt").read_bytes()).serial
    revoke(own_pki, serial=hub_serial, reason="keyCompromise")
    hub = await start_hub(hub_settings_factory(databases("hub"), pki_dir=own_pki))
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port, pki_dir=own_pki))

    def link_state() -> tuple[str, str] | None:
        snapshot = city.node.outbox.snapshot()
        return (snapshot.state, snapshot.last_error) if snapshot.state == "hub-revoked" else None

    _state, error = await wait_until(link_state, what="the city to refuse the revoked hub")
    assert str(hub_serial) in error and "revoked" in error
    # The city never said Hello: the hub has no contact from it.
    with hub.engine.connect() as conn:
        contacted = conn.execute(
            select(CityLink.first_contact_at).where(CityLink.city_code == CITY)
        ).scalar_one_or_none()
    assert contacted is None


async def test_one_city_cannot_hold_more_than_its_share_of_calls(
    databases, hub_settings_factory, start_hub, pki_dir
):
    hub = await start_hub(hub_settings_factory(databases("hub"), max_calls_per_city=2))
    lock = hub.service.city_lock(CITY)
    async with make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY)) as channel:
        stub = pb_grpc.FederationStub(channel)
        await lock.acquire()  # ingest of this city is busy: pushes wait inside the hub
        waiting = [
            asyncio.ensure_future(stub.Push(pb.PushRequest(envelopes=[suggestion(1)]), timeout=20))
            for _ in range(2)
        ]
        await asyncio.sleep(0.5)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Push(pb.PushRequest(envelopes=[suggestion(1)]), timeout=5)
        finally:
            lock.release()
        acks = await asyncio.gather(*waiting)
        # Slots are given back: the next call is served.
        after = await stub.Push(pb.PushRequest(envelopes=[suggestion(2)]), timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "2 calls in flight" in (refused.value.details() or "")
    assert [a.acked_through_seq for a in acks] == [1, 1] and after.acked_through_seq == 2


async def test_heartbeat_text_is_stored_cut_to_one_kib(
    databases, hub_settings_factory, start_hub, pki_dir
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    huge = "x" * (5 * 1024 * 1024)
    heartbeat = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=0,
        body=pb.Heartbeat(backlog=3, last_error=huge, software_version=huge),
    )
    async with make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY)) as channel:
        await pb_grpc.FederationStub(channel).Push(
            pb.PushRequest(envelopes=[heartbeat]), timeout=30
        )
    with hub.engine.connect() as conn:
        error, version, backlog = conn.execute(
            select(CityLink.city_last_error, CityLink.software_version, CityLink.backlog).where(
                CityLink.city_code == CITY
            )
        ).one()
    assert backlog == 3
    assert len(error) == len(version) == MAX_HEARTBEAT_TEXT_CHARS
    assert error.startswith("xxx") and error.endswith("…")
    # A control character in it (an escape sequence for the terminal that lists links) is
    # stored as a visible escape.
    rude = build_envelope(
        city_code=CITY,
        epoch=EPOCH,
        seq=0,
        body=pb.Heartbeat(backlog=1, last_error="down \x1b[31mRED\x07 \u202eevil"),
    )
    async with make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY)) as channel:
        await pb_grpc.FederationStub(channel).Push(pb.PushRequest(envelopes=[rude]), timeout=30)
    with hub.engine.connect() as conn:
        error = conn.execute(
            select(CityLink.city_last_error).where(CityLink.city_code == CITY)
        ).scalar_one()
    assert error == "down \\x1b[31mRED\\x07 \\u202eevil"


async def test_the_message_cap_holds_the_largest_real_batch_and_no_more(
    databases, hub_settings_factory, start_hub, pki_dir
):
    cap = HubSettings().max_message_mb * 1024 * 1024
    measured = measure()
    # 5000 of the largest envelopes that come by the thousands fit in one call...
    assert measured["batch_envelopes"] == 5000 and measured["batch_bytes"] <= cap
    # ...and the cap is tight: at most a quarter above that batch.
    assert cap <= measured["batch_bytes"] * 1.25
    hub = await start_hub(
        hub_settings_factory(databases("hub"), max_message_mb=HubSettings().max_message_mb)
    )
    oversized = b"\x0a" + _varint(cap + 16) + b"\x00" * (cap + 16)
    tls = load_city_tls(pki_dir, CITY)
    credentials = grpc.ssl_channel_credentials(tls.ca_cert, tls.private_key, tls.cert_chain)
    # A client that sends more than the cap (the project's own client would refuse to).
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{hub.port}",
        credentials,
        options=[("grpc.max_send_message_length", 2 * cap)],
    ) as channel:
        push = channel.unary_unary(
            "/fedsync.v1.Federation/Push", response_deserializer=pb.PushResponse.FromString
        )
        code = await code_of(push(oversized, timeout=60))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    with hub.engine.connect() as conn:
        assert conn.execute(select(Record.seq)).first() is None


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)
