"""Several hub replicas on one PostgreSQL: what one replica takes in, the other serves."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from city_node.store import InboxNotice
from province_hub import services as hub_services
from province_hub.store import Record
from sync.link import make_channel
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import load_city_tls
from tests.conftest import ROSTER_CODES, DatabaseFactory, wait_until
from tests.integration.push.support import envelopes


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

    def titles() -> list[str]:
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


def _inbox_titles(city) -> list[str]:
    with city.engine.connect() as conn:
        return list(
            conn.execute(select(InboxNotice.title).order_by(InboxNotice.notice_seq)).scalars()
        )


@pytest.mark.postgres
async def test_a_notice_from_one_replica_wakes_streams_on_another_even_after_its_listener_dropped(
    pg_databases,
    hub_settings_factory,
    city_settings_factory,
    start_hub,
    start_city,
    postgres_server_url,
):
    """LISTEN/NOTIFY carries a notice across replicas; catch-up by seq covers a lost NOTIFY.

    Replica B's streams poll only once a minute here, so only its listener can bring the
    notices within the test's waits.
    """
    import psycopg

    from province_hub.broker import libpq_conninfo

    url = pg_databases("hub")
    replica_a = await start_hub(hub_settings_factory(url))
    replica_b = await start_hub(
        hub_settings_factory(
            url,
            notice_poll_seconds=60.0,
            notice_listen_fallback_seconds=60.0,
            notice_listen_backoff_max=0.5,
        )
    )
    assert replica_a.listener is not None and replica_b.listener is not None
    code = ROSTER_CODES[0]
    city = start_city(city_settings_factory(code, pg_databases("city"), replica_b.port))
    await wait_until(lambda: Outbox(city.engine).snapshot().state == "connected")

    def send(title: str) -> None:
        hub_services.send_notice(
            replica_a.engine,
            notice=pb.Notice(kind=pb.ANNOUNCEMENT, title=title, targets=[code]),
            roster_codes=ROSTER_CODES,
        )

    send("announced")
    await wait_until(lambda: _inbox_titles(city) == ["announced"], what="the notified notice")

    # Cut B's listening connection from the server side and keep it from reconnecting
    # while a notice is sent (A sends through the connection its pool already holds): that
    # NOTIFY reaches no one on B. Once connections are allowed again the listener's
    # catch-up by seq finds the notice.
    listener = replica_b.listener
    pid = listener.backend_pid
    assert pid is not None
    database = make_url(url).database
    with psycopg.connect(libpq_conninfo(postgres_server_url), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            await wait_until(lambda: listener.backend_pid is None, what="B's listener cut")
            send("while cut")
            await asyncio.sleep(0.3)  # the NOTIFY, had anyone on B heard it, would be in
            assert _inbox_titles(city) == ["announced"]
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    await wait_until(
        lambda: _inbox_titles(city) == ["announced", "while cut"], what="the caught-up notice"
    )
    assert listener.connections >= 2
