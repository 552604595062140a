"""What the Push tests share: a city, its envelopes, and the hub's state to compare."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from province_hub.store import CityLink, NoticeDelivery, Record
from sync import errors
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.rpc_errors import from_rpc_error
from tests.conftest import ROSTER_CODES

CITY, OTHER = ROSTER_CODES[0], ROSTER_CODES[1]
EPOCH = "e" * 32


def suggestion(n: int) -> pb.SuggestionBatch:
    return pb.SuggestionBatch(
        batch_date="2026-01-05",
        batch_number=n,
        suggestions=[pb.Suggestion(ticket_id=f"S-{n}", content="more evening hours")],
    )


def envelopes(city: str, first: int, count: int, **fields: Any) -> list[pb.Envelope]:
    out = []
    for seq in range(first, first + count):
        env = build_envelope(city_code=city, epoch=EPOCH, seq=seq, body=suggestion(seq))
        for name, value in fields.items():
            setattr(env, name, value)
        out.append(env)
    return out


def store_state(engine: Any) -> tuple[int, list[tuple[Any, ...]], int]:
    """Records, city marks and notice deliveries: what a refusal must leave unchanged."""
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(Record)).scalar_one(),
            sorted(
                tuple(r)
                for r in conn.execute(
                    select(CityLink.city_code, CityLink.acked_seq, CityLink.epoch)
                )
            ),
            conn.execute(select(func.count()).select_from(NoticeDelivery)).scalar_one(),
        )


async def push(stub: Any, envs: list[pb.Envelope]) -> pb.PushResponse:
    response: pb.PushResponse = await stub.Push(pb.PushRequest(envelopes=envs), timeout=10)
    return response


async def refused(call: Any) -> tuple[grpc.StatusCode, str, errors.LinkError | None]:
    """The status, message and decoded ``SyncError`` of a call the hub refuses."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or "", from_rpc_error(info.value)
