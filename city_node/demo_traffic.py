"""Sample records for ``fedsync demo`` until the city's ticket work produces real ones.

Everything goes through the city's services (the outbox), never straight into tables.
Figures are random but consistent, so the hub accepts them; an announcement is read and a
task marked done a few seconds after it arrives, as a diligent city would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta

from sqlalchemy import Engine

from city_node import services
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import today_in

CATEGORIES = ("BILL.DISPUTE", "NET.BROADBAND", "NET.SIGNAL", "SVC.ATTITUDE", "MKT.CALLS")
CHANNELS = ("phone", "web", "walk-in")


def sample_statistics(day_start: str, revision: int, rng: random.Random) -> pb.StatisticsReport:
    by_category = [pb.SliceCounts(key=code, complaints=rng.randint(0, 40)) for code in CATEGORIES]
    complaints = sum(s.complaints for s in by_category)
    split = [rng.randint(0, complaints) for _ in range(len(CHANNELS) - 1)]
    cuts = sorted(split)
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, complaints], strict=True)]
    by_channel = [
        pb.SliceCounts(key=ch, complaints=n) for ch, n in zip(CHANNELS, parts, strict=True)
    ]
    closed = rng.randint(0, complaints)
    sat = [rng.randint(0, closed // 4 + 1) for _ in range(4)]
    report = pb.StatisticsReport(
        period=pb.Period(kind=pb.DAY, start=day_start),
        revision=revision,
        complaints_received=complaints,
        suggestions_received=rng.randint(0, 15),
        enquiries_received=rng.randint(20, 200),
        handled=complaints,
        closed=closed,
        closed_in_time=rng.randint(0, closed),
        overtime_open=rng.randint(0, 5),
        repeat_complaints=rng.randint(0, complaints // 5),
        escalations_raised=rng.randint(0, 2),
        complaints_closed=closed,
        satisfaction=pb.SatisfactionCounts(
            very_satisfied=sat[0],
            satisfied=sat[1],
            neutral=sat[2],
            dissatisfied=sat[3],
            surveyed=sum(sat),
            unreachable=rng.randint(0, 3),
        ),
        by_category=by_category,
        by_channel=by_channel,
        approved_by="auto",
    )
    report.approved_at.GetCurrentTime()
    return report


def sample_suggestions(day: str, number: int, rng: random.Random) -> pb.SuggestionBatch:
    items = [
        pb.Suggestion(
            ticket_id=f"S{day.replace('-', '')}-{number:03d}-{i:02d}",
            category=rng.choice(CATEGORIES),
            content=rng.choice(
                ("延长营业厅周末营业时间", "宽带报修希望提供上门时间段预约", "话费账单增加明细说明")
            ),
        )
        for i in range(rng.randint(1, 5))
    ]
    return pb.SuggestionBatch(
        batch_date=day, batch_number=number, suggestions=items, classified_by="clerk-01"
    )


async def run(engine: Engine, *, tz_name: str, stop: asyncio.Event, wake: object) -> None:
    """Produce a suggestion batch every few seconds and a daily report now and then."""
    rng = random.Random()
    number = 0
    while not stop.is_set():
        number += 1
        today = today_in(tz_name)
        yesterday = (today - timedelta(days=1)).isoformat()
        body = (
            sample_statistics(yesterday, number, rng)
            if number % 3 == 0
            else sample_suggestions(today.isoformat(), number, rng)
        )
        await asyncio.to_thread(services.send, engine, body, tz_name=tz_name)
        if callable(wake):
            wake()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(3.0, 8.0))


def auto_receipts(engine: Engine, notice: pb.Notice) -> None:
    """Read announcements and tasks as they arrive; mark tasks done."""
    if notice.kind in (pb.ANNOUNCEMENT, pb.TASK, pb.STANDARD_ANSWER, pb.FINDING, pb.REMINDER):
        services.record_receipt(engine, notice_seq=notice.seq, action="read", actor="demo-leader")
    if notice.kind == pb.TASK:
        services.record_receipt(
            engine, notice_seq=notice.seq, action="done", actor="demo-leader", note="done (demo)"
        )
