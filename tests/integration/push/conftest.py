"""A hub with small limits and one city's stub on it, for the Push refusal tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from sync.link import make_channel
from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
from sync.pki import load_city_tls
from tests.integration.push.support import CITY


@pytest.fixture
async def hub(databases: Any, hub_settings_factory: Any, start_hub: Any) -> Any:
    return await start_hub(hub_settings_factory(databases("hub"), max_batch=50, max_message_mb=1))


@pytest.fixture
async def stub(hub: Any, pki_dir: Any) -> AsyncIterator[Any]:
    channel = make_channel(f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, CITY))
    yield pb_grpc.FederationStub(channel)
    await channel.close()
