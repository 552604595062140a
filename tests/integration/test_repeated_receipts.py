"""A city may record a receipt for the same notice again (pressed twice, or re-recorded after
a restore): the hub keeps the first read, done and objection times (completion is judged
by when the city first said so) and the latest done note and objection reason, and done
implies read (README, "Notices from the supervisor web"). Real ingest, SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from province_hub import services
from province_hub.store import NoticeDelivery, create_schema
from sync.db import make_engine
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES

CITY = ROSTER_CODES[0]
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


def test_first_times_and_latest_notes_are_kept(databases: Any) -> None:
    engine = make_engine(databases("hub"))
    try:
        create_schema(engine)
        task = pb.Notice(kind=pb.TASK, title="排查", targets=[CITY])
        task.task_deadline.FromDatetime(datetime.now(UTC) + timedelta(days=3))
        notice = services.send_notice(engine, notice=task, roster_codes=ROSTER_CODES)
        steps = [
            (pb.READ, "", 0),
            (pb.READ, "", 1),
            (pb.DONE, "first", 2),
            (pb.DONE, "second", 3),
            (pb.OBJECTION, "not ours", 4),
        ]
        seen = []
        for seq, (action, note, hours) in enumerate(steps, start=1):
            receipt = pb.NoticeReceipt(
                notice_seq=notice.seq, action=action, note=note, actor="leader-1"
            )
            receipt.acted_at.FromDatetime(T0 + timedelta(hours=hours))
            envelope = build_envelope(city_code=CITY, epoch="e" * 32, seq=seq, body=receipt)
            result = services.ingest_batch(
                engine, city_code=CITY, envelopes=[envelope], tz_name="Asia/Shanghai", max_batch=5
            )
            assert result.accepted == 1
            with engine.connect() as conn:
                row = conn.execute(
                    select(NoticeDelivery).where(NoticeDelivery.notice_seq == notice.seq)
                ).one()
            seen.append(
                (
                    _utc(row.read_at),
                    _utc(row.done_at),
                    row.done_note,
                    _utc(row.objection_at),
                    row.objection_reason,
                )
            )
        at = [T0 + timedelta(hours=h) for h in range(5)]
        assert seen == [
            (at[0], None, None, None, None),
            (at[0], None, None, None, None),  # the first read stays
            (at[0], at[2], "first", None, None),
            (at[0], at[2], "second", None, None),  # the first done time, the latest note
            (at[0], at[2], "second", at[4], "not ours"),  # both stand
        ]
    finally:
        engine.dispose()


def test_done_implies_read(databases: Any) -> None:
    engine = make_engine(databases("hub"))
    try:
        create_schema(engine)
        notice = services.send_notice(
            engine,
            notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="公告", targets=[CITY]),
            roster_codes=ROSTER_CODES,
        )
        receipt = pb.NoticeReceipt(notice_seq=notice.seq, action=pb.DONE, note="posted")
        receipt.acted_at.FromDatetime(T0)
        envelope = build_envelope(city_code=CITY, epoch="e" * 32, seq=1, body=receipt)
        services.ingest_batch(
            engine, city_code=CITY, envelopes=[envelope], tz_name="Asia/Shanghai", max_batch=5
        )
        with engine.connect() as conn:
            row = conn.execute(select(NoticeDelivery.read_at, NoticeDelivery.done_at)).one()
        assert _utc(row.read_at) == _utc(row.done_at) == T0
    finally:
        engine.dispose()
