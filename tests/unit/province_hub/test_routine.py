"""The hub's routine stops without leaving a tick running under a disposed engine."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from province_hub import jobs
from province_hub.settings import HubSettings


async def test_stop_waits_for_the_tick_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    started = threading.Event()
    finished = threading.Event()

    def slow_tick(engine: Any, **kwargs: Any) -> list[Any]:
        started.set()
        time.sleep(0.5)  # a tick that holds its connection for a while
        finished.set()
        return []

    monkeypatch.setattr(jobs, "send_reminders", slow_tick)
    routine = jobs.build_scheduler(
        engine=object(),  # type: ignore[arg-type]  # never touched: the tick is replaced
        deadlines=HubSettings().deadlines(),
        roster_codes=["620100"],
        every_minutes=0.001,
        lookback_days=5,
    )
    routine.start()
    assert routine.running
    for _ in range(200):  # bounded: 10 s
        if started.is_set():
            break
        await asyncio.sleep(0.05)
    assert started.is_set(), "the routine never ticked"
    assert routine.ticks, "the tick in flight is not tracked"
    await routine.stop(grace=5)
    assert finished.is_set(), "stop returned while a tick was still running"
    assert not routine.ticks and not routine.running
