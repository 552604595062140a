"""A hub restored from an older backup gets back what it lost from the cities' outboxes; the
reports among them keep the time the hub first received them (``PushRequest.acked_before``),
so a report delivered on time is not judged late for the re-send. Real hub and city over
mutual TLS, SQLite and PostgreSQL; the bounds at the service."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from city_node import services as city_services
from province_hub import services as hub_services
from province_hub.figures import StatisticsFigures
from province_hub.store import DeskCase, Record, create_schema
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.link import encode_push_request
from sync.outbox import Outbox, OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.wire import push_bodies
from tests.conftest import ROSTER_CODES, wait_until
from tests.integration.test_restored_hub_notices import restored_hub

CITY = ROSTER_CODES[0]
TZ = "Asia/Shanghai"


def report(day: str) -> pb.StatisticsReport:
    return pb.StatisticsReport(
        period=pb.Period(kind=pb.DAY, start=day),
        revision=1,
        complaints_received=3,
        closed=2,
        closed_in_time=1,
        approved_by="leader-1",
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def received(engine: Any) -> dict[int, datetime]:
    """seq -> the figure header's received_at (deadlines are judged on it)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(StatisticsFigures.seq, StatisticsFigures.received_at).where(
                StatisticsFigures.city_code == CITY
            )
        ).all()
    return {int(r.seq): _utc(r.received_at) for r in rows}


def desk_cases(engine: Any) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(DeskCase.seq)).all())


def first_acks(engine: Any) -> dict[int, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.seq, OutboxRow.delivered_at)).all()
    return {int(r.seq): _utc(r.delivered_at) for r in rows if r.delivered_at is not None}


def delivered_through(engine: Any, seq: int) -> bool:
    return Outbox(engine).snapshot().delivered_seq >= seq


async def test_a_report_resent_to_a_restored_hub_keeps_its_first_receipt_time(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub_settings = hub_settings_factory(databases("hub"))
    hub = await start_hub(hub_settings)
    await hub.stop(grace=0.5)
    hub.engine.dispose()
    backup_url = databases.copy(hub_settings.database_url)  # before any report
    hub = await start_hub(dataclasses.replace(hub_settings, listen=f"127.0.0.1:{hub.port}"))
    city = start_city(city_settings_factory(CITY, databases("city"), hub.port))
    first = city_services.send(city.engine, report("2026-11-20"))
    second = city_services.send(city.engine, report("2026-11-21"))
    escalation = pb.Escalation(
        ticket_id="T-1", kind=pb.COMPLAINT, tier=pb.ORDINARY, reason="r", content="c"
    )
    escalation.registered_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
    escalated = city_services.send(city.engine, escalation)
    await wait_until(lambda: delivered_through(city.engine, escalated), what="every record")
    before = received(hub.engine)
    acks = first_acks(city.engine)
    assert set(before) == {first, second}

    restored_at = datetime.now(UTC)
    restored = await restored_hub(start_hub, hub_settings, hub, backup_url)
    assert received(restored.engine) == {}
    await wait_until(lambda: desk_cases(restored.engine) == 1, what="everything re-sent")
    again = received(restored.engine)
    # Stored as received when the hub first acknowledged them (the city's record of it),
    # not at the re-send after the restore.
    for seq in (first, second):
        assert again[seq] == acks[seq] < restored_at
        assert before[seq] <= again[seq] < before[seq] + timedelta(seconds=5)
    with restored.engine.connect() as conn:
        rows = conn.execute(
            select(Record.seq, Record.received_at).where(Record.city_code == CITY)
        ).all()
        case = conn.execute(select(DeskCase.received_at).where(DeskCase.seq == escalated)).one()
    assert {int(r.seq): _utc(r.received_at) for r in rows} == {**again, escalated: acks[escalated]}
    # The desk's case too: received when the hub first had it, as its record says.
    assert _utc(case.received_at) == acks[escalated] < restored_at
    # A report sent after the restore is received now.
    third = city_services.send(city.engine, report("2026-11-22"))
    await wait_until(lambda: third in received(restored.engine), what="the third report")
    assert received(restored.engine)[third] >= restored_at


def ingest(engine: Any, request: pb.PushRequest, data: bytes, now: datetime) -> Any:
    """The hub's ingest of a Push as the gRPC layer hands it over (``data``: its bytes)."""
    return hub_services.ingest_batch(
        engine,
        city_code=CITY,
        envelopes=request.envelopes,
        tz_name=TZ,
        max_batch=10,
        bodies=push_bodies(data),
        now=now,
        acked_before=request.acked_before,
    )


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def test_stated_times_are_taken_only_between_creation_and_now(
    databases: Any, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(databases("hub"))
    try:
        create_schema(engine)
        now = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
        created = now - timedelta(hours=5)
        envelopes = [
            build_envelope(
                city_code=CITY,
                epoch="e" * 32,
                seq=n,
                body=report(f"2026-11-{10 + n:02d}"),
                created_at=created,
            )
            for n in range(1, 6)
        ]
        stated = {
            1: _ts(created + timedelta(minutes=1)),  # taken
            2: _ts(created - timedelta(minutes=1)),  # before it was created
            3: _ts(now + timedelta(minutes=1)),  # after the hub's clock
            4: Timestamp(seconds=-(2**40)),  # no date at all
            9: _ts(created + timedelta(minutes=2)),  # not in the batch
        }
        # Through the wire as a city sends it: the map rides after the envelopes.
        data = encode_push_request(
            [e.SerializeToString() for e in envelopes],
            {seq: stamp.ToDatetime(UTC) for seq, stamp in stated.items() if seq != 4},
        )
        request = pb.PushRequest.FromString(data)
        assert sorted(request.acked_before) == [1, 2, 3, 9]
        request.acked_before[4].CopyFrom(stated[4])
        caplog.set_level(logging.INFO, logger="province_hub")
        assert ingest(engine, request, data, now).accepted == 5
        times = received(engine)
        assert times[1] == created + timedelta(minutes=1)
        assert times[2] == times[3] == times[4] == times[5] == now
        # The log says how many were not taken: three outside the bounds, one not in the batch.
        said = [
            (r.levelname, r.getMessage())
            for r in caplog.records
            if "stated times ignored" in r.getMessage()
        ]
        # A warning: shown at a hub's default log level.
        assert [level for level, _ in said] == ["WARNING"], said
        message = said[0][1]
        assert "re-sends 1 envelopes" in message and "; 4 stated times ignored" in message
    finally:
        engine.dispose()


def test_a_stated_time_before_the_last_held_envelope_was_received_is_not_taken(
    databases: Any,
) -> None:
    """Envelopes are acknowledged in seq order: one the hub lost was acknowledged after the
    last one it holds. A city stating an earlier time for an envelope after the hub's mark
    (one it never delivered: a late report passed off as on time) is not believed; a time
    after it, within the clocks' slack, is."""
    from province_hub.ingest import ACKED_BEFORE_SLACK

    engine = make_engine(databases("hub"))
    try:
        create_schema(engine)
        held_at = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)  # seq 1 came then
        created = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)

        def push(seq: int, day: str, stated: datetime | None, now: datetime) -> None:
            envelope = build_envelope(
                city_code=CITY, epoch="e" * 32, seq=seq, body=report(day), created_at=created
            )
            data = encode_push_request(
                [envelope.SerializeToString()], {seq: stated} if stated else {}
            )
            assert ingest(engine, pb.PushRequest.FromString(data), data, now).accepted == 1

        push(1, "2026-11-24", None, held_at)
        later = held_at + timedelta(days=1)
        # "Acknowledged on the 26th", for a seq delivered for the first time on the 30th.
        push(2, "2026-11-25", datetime(2026, 11, 26, 1, 0, tzinfo=UTC), later)
        # A lost envelope acknowledged just after seq 2, by a city clock a little behind.
        skewed = later - ACKED_BEFORE_SLACK + timedelta(minutes=1)
        push(3, "2026-11-26", skewed, later + timedelta(hours=1))
        times = received(engine)
        assert times == {1: held_at, 2: later, 3: skewed}
    finally:
        engine.dispose()
