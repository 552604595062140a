"""Promise of the PKI hand-out: a node is given its own key and certificate, never the CA key
or another node's key (what ``docker/docker-compose.yml`` mounts into each container; that file
is checked in ``tests/unit/test_docker.py``)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sync.cli import main
from sync.pki import Revocations, init_pki, load_city_tls, load_hub_tls, revoke

CITY, OTHER = "620100", "620200"


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    directory = tmp_path / "ca"
    init_pki(directory, city_codes=[CITY, OTHER])
    return directory


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_a_city_gets_only_its_own_key(ca: Path, tmp_path: Path, capsys) -> None:
    node = tmp_path / "city"
    assert main(["pki", "export", "--dir", str(ca), "--city", CITY, "--to", str(node)]) == 0
    assert files(node) == {"ca.crt", "crl.pem", f"cities/{CITY}.crt", f"cities/{CITY}.key"}
    assert stat.S_IMODE((node / "cities" / f"{CITY}.key").stat().st_mode) == 0o600
    # What the node reads at start works from this folder alone.
    assert load_city_tls(node, CITY).private_key == (ca / "cities" / f"{CITY}.key").read_bytes()
    assert Revocations(node / "crl.pem").number == 1


def test_the_hub_gets_only_its_own_key_and_a_new_crl_on_re_export(ca: Path, tmp_path: Path) -> None:
    node = tmp_path / "hub"
    assert main(["pki", "export", "--dir", str(ca), "--hub", "--to", str(node)]) == 0
    assert files(node) == {"ca.crt", "crl.pem", "hub.crt", "hub.key"}
    load_hub_tls(node)
    revoke(ca, code=OTHER)
    assert main(["pki", "export", "--dir", str(ca), "--hub", "--to", str(node)]) == 0
    assert Revocations(node / "crl.pem").number == 2
