"""Several hub replicas on one PostgreSQL: what one replica takes in, the other serves."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from city_node.store import InboxNotice
from province_hub import services as hub_services
from province_hub.store import Record
from sync.link import make_channel
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import load_city_tls
from tests.conftest import ROSTER_CODES, DatabaseFactory, wait_until
from tests.integration.test_refusals import envelopes


@pytest.fixture
def pg_databases(postgres_server_url, tmp_path):
    """Replicas share a PostgreSQL database (a SQLite file belongs to one process)."""
    factory = DatabaseFactory("postgresql", tmp_path, postgres_server_url)
    yield factory
    factory.drop_all()


@pytest.mark.postgres
async def test_two_replicas_share_one_database(
    pg_databases, hub_settings_factory, city_settings_factory, start_hub, start_city, pki_dir
):
    databases = pg_databases
    url = databases("hub")
    first = await start_hub(hub_settings_factory(url))
    second = await start_hub(hub_settings_factory(url))
    code = ROSTER_CODES[0]
    city = start_city(city_settings_factory(code, databases("city"), first.port))
    await wait_until(lambda: Outbox(city.engine).snapshot().state == "connected")

    # A notice created through the second replica reaches the city streaming from the first.
    hub_services.send_notice(
        second.engine,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="from replica two", targets=[code]),
        roster_codes=ROSTER_CODES,
    )

    def titles():
        with city.engine.connect() as conn:
            return list(conn.execute(select(InboxNotice.title)).scalars())

    await wait_until(lambda: titles() == ["from replica two"], what="the notice via replica one")

    # Two other cities push the same seqs to both replicas at once: each (city, seq) once.
    others = ROSTER_CODES[1:3]
    channels = []
    try:
        calls = []
        for other in others:
            for hub in (first, second):
                channel = make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, other))
                channels.append(channel)
                stub = pb_grpc.FederationStub(channel)
                for start in (1, 101, 201):
                    batch = [e for e in envelopes(other, 1, 300) if start <= e.seq < start + 100]
                    calls.append(_push_until_acked(stub, batch))
        await asyncio.gather(*calls)
    finally:
        for channel in channels:
            await channel.close()
    with first.engine.connect() as conn:
        for other in others:
            seqs = list(
                conn.execute(
                    select(Record.seq).where(Record.city_code == other).order_by(Record.seq)
                ).scalars()
            )
            assert seqs == list(range(1, 301))


async def _push_until_acked(stub, batch) -> None:
    """Push one batch; on a gap (an earlier batch not in yet) try again shortly."""
    import grpc

    for _ in range(200):
        try:
            await stub.Push(pb.PushRequest(envelopes=batch), timeout=10)
            return
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.OUT_OF_RANGE:
                raise
            await asyncio.sleep(0.02)
    raise AssertionError("batch never accepted")
