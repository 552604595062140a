"""The committed generated code must be what ``make proto`` produces from ``proto/``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_the_proto(tmp_path: Path):
    pytest.importorskip("grpc_tools", reason="grpcio-tools is a dev extra")
    generated = {
        p.relative_to(tmp_path): p.read_bytes() for p in _load_generator().generate(tmp_path)
    }
    committed_root = ROOT / "sync" / "pb"
    committed = {
        p.relative_to(committed_root): p.read_bytes()
        for p in committed_root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    stale = sorted(str(name) for name in generated if committed.get(name) != generated[name])
    extra = sorted(str(name) for name in set(committed) - set(generated))
    assert not stale and not extra, (
        f"sync/pb is stale (run `make proto` and commit): differs {stale}, not generated {extra}"
    )


def test_every_body_kind_is_known_to_the_envelope_code():
    from sync.envelopes import BODY_KINDS
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    oneof = pb.Envelope.DESCRIPTOR.oneofs_by_name["body"]
    assert sorted(f.name for f in oneof.fields) == sorted(BODY_KINDS.values())
    assert sys.modules["sync.pb.fedsync.v1.federation_pb2"] is pb
