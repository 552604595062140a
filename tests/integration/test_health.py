"""Standard gRPC health checking and server reflection on the hub (over the same mTLS)."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sync.link import make_channel
from sync.pki import load_city_tls
from tests.conftest import ROSTER_CODES


async def test_health_and_reflection(databases, hub_settings_factory, start_hub, pki_dir):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    async with make_channel(
        f"127.0.0.1:{hub.port}", load_city_tls(pki_dir, ROSTER_CODES[0])
    ) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "fedsync.v1.Federation"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        names: set[str] = set()
        async for response in stub.ServerReflectionInfo(iter([request]), timeout=5):
            names.update(s.name for s in response.list_services_response.service)
        assert "fedsync.v1.Federation" in names and "grpc.health.v1.Health" in names
