"""Tests for sync.pki: the province CA, node certificates, CRL and mTLS."""

from __future__ import annotations

import ipaddress
import shutil
import stat
from collections.abc import Callable
from concurrent import futures
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sync.pki import (
    CITY_URI_PREFIX,
    HUB_URI,
    PkiError,
    hub_hosts,
    identity_from_pem,
    init_pki,
    issue_city,
    issue_hub,
    load_city_tls,
    load_hub_tls,
    load_revoked_serials,
    revoke,
)

# Certificate budget (EC keygen is cheap but not free): the shared PKI below
# holds 4 certificates; each mutating test builds its own small PKI.
CODES = ("620100", "620200")
HUB_HOSTS = ("localhost", "127.0.0.1", "hub.example.org", "::1")


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only PKI shared by tests that do not modify it."""
    directory = tmp_path_factory.mktemp("pki")
    init_pki(directory, city_codes=CODES, hub_hosts=HUB_HOSTS)
    return directory


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    """A private PKI with one city, for tests that re-issue or revoke."""
    directory = tmp_path / "pki"
    init_pki(directory, city_codes=["620100"], hub_hosts=["localhost"])
    return directory


def test_init_creates_every_file_with_private_keys_0600(pki: Path) -> None:
    expected = {
        "ca.crt",
        "ca.key",
        "hub.crt",
        "hub.key",
        "crl.pem",
        "cities/620100.crt",
        "cities/620100.key",
        "cities/620200.crt",
        "cities/620200.key",
    }
    present = {p.relative_to(pki).as_posix() for p in pki.rglob("*") if p.is_file()}
    # Equality, not subset: leftover temp files would mean a non-atomic write.
    assert present == expected
    for key in sorted(pki.rglob("*.key")):
        assert _mode(key) == 0o600, key
    assert load_revoked_serials(pki / "crl.pem") == frozenset()


def test_ca_certificate_constraints(pki: Path) -> None:
    ca = _cert(pki / "ca.crt")
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fedsync province CA"
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    years = (ca.not_valid_after_utc - ca.not_valid_before_utc).days / 365.25
    assert 9.9 < years < 10.1


def test_city_identity_round_trips(pki: Path) -> None:
    for code in CODES:
        pem = (pki / "cities" / f"{code}.crt").read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        ident = identity_from_pem(pem)
        assert ident.kind == "city"
        assert ident.code == code
        assert ident.serial == cert.serial_number
        assert ident.not_after == cert.not_valid_after_utc
        assert ident.not_after.tzinfo is not None
        assert ident.not_after.utcoffset() == UTC.utcoffset(None)

        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"{CITY_URI_PREFIX}{code}"
        ]
        assert san.get_values_for_type(x509.DNSName) == [f"city-{code}"]
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert cert.subject.rfc4514_string() == f"OU=city,O=fedsync,CN={code}"


def test_hub_certificate_has_requested_sans(pki: Path) -> None:
    pem = (pki / "hub.crt").read_bytes()
    cert = x509.load_pem_x509_certificate(pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "hub.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [HUB_URI]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}

    ident = identity_from_pem(pem)
    assert (ident.kind, ident.code, ident.serial) == ("hub", None, cert.serial_number)


def test_leaf_certificates_verify_against_ca(pki: Path) -> None:
    ca = _cert(pki / "ca.crt")
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    leaves = [pki / "hub.crt", *(pki / "cities" / f"{c}.crt" for c in CODES)]
    serials = set()
    for path in leaves:
        leaf = _cert(path)
        leaf.verify_directly_issued_by(ca)  # raises on a bad signature or issuer
        serials.add(leaf.serial_number)
        bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert bc.ca is False
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        assert ku.digital_signature and not ku.key_cert_sign
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ca_ski.digest
        leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert leaf.not_valid_before_utc <= datetime.now(UTC) < leaf.not_valid_after_utc
    assert len(serials) == len(leaves)


def test_identity_from_pem_rejects_non_fedsync_certificates(pki: Path) -> None:
    # The CA certificate has no SAN at all: a valid cert that is nobody.
    with pytest.raises(PkiError, match="subjectAltName"):
        identity_from_pem((pki / "ca.crt").read_bytes())
    with pytest.raises(PkiError, match="PEM"):
        identity_from_pem(b"not a certificate")


def test_load_tls_files(pki: Path) -> None:
    city = load_city_tls(pki, "620100")
    assert city.ca_cert == (pki / "ca.crt").read_bytes()
    assert city.cert_chain == (pki / "cities" / "620100.crt").read_bytes()
    assert city.private_key == (pki / "cities" / "620100.key").read_bytes()
    hub = load_hub_tls(pki)
    assert hub.cert_chain == (pki / "hub.crt").read_bytes()
    assert hub.private_key == (pki / "hub.key").read_bytes()
    with pytest.raises(PkiError, match=r"620999\.crt"):
        load_city_tls(pki, "620999")


def test_reissue_replaces_files_with_new_serial(fresh: Path) -> None:
    crt_path = fresh / "cities" / "620100.crt"
    key_path = fresh / "cities" / "620100.key"
    old_serial = _cert(crt_path).serial_number
    old_key = key_path.read_bytes()

    assert issue_city(fresh, "620100") == (crt_path, key_path)

    new = _cert(crt_path)
    assert new.serial_number != old_serial
    assert key_path.read_bytes() != old_key
    assert _mode(key_path) == 0o600
    assert identity_from_pem(crt_path.read_bytes()).code == "620100"
    new.verify_directly_issued_by(_cert(fresh / "ca.crt"))
    # The new key must belong to the new cert, or the node cannot handshake.
    assert load_city_tls(fresh, "620100").private_key == key_path.read_bytes()


def test_a_hub_reissue_keeps_the_names_cities_dial(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    init_pki(directory, city_codes=["620100"], hub_hosts=["hub.province.example", "10.0.0.5"])
    old_serial = _cert(directory / "hub.crt").serial_number
    issue_hub(directory)  # no names given: the ones it had
    assert hub_hosts(directory) == ["hub.province.example", "10.0.0.5"]
    assert _cert(directory / "hub.crt").serial_number != old_serial
    issue_hub(directory, hosts=["hub2.province.example"])  # names given: those
    assert hub_hosts(directory) == ["hub2.province.example"]
    assert hub_hosts(tmp_path) == []  # no hub certificate there


def test_revoke_adds_to_crl_and_keeps_earlier_entries(fresh: Path) -> None:
    crl_path = fresh / "crl.pem"
    city_serial = _cert(fresh / "cities" / "620100.crt").serial_number
    hub_serial = _cert(fresh / "hub.crt").serial_number

    assert revoke(fresh, code="620100", reason="keyCompromise") == city_serial
    assert load_revoked_serials(crl_path) == {city_serial}

    assert revoke(fresh, serial=hub_serial) == hub_serial
    assert load_revoked_serials(crl_path) == {city_serial, hub_serial}

    crl = x509.load_pem_x509_crl(crl_path.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(city_serial)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise

    before = crl_path.read_bytes()
    assert revoke(fresh, serial=city_serial) == city_serial
    assert crl_path.read_bytes() == before  # already revoked: untouched

    with pytest.raises(PkiError, match="exactly one"):
        revoke(fresh, code="620100", serial=hub_serial)
    with pytest.raises(PkiError, match="exactly one"):
        revoke(fresh)
    with pytest.raises(PkiError, match="620300"):
        revoke(fresh, code="620300")
    with pytest.raises(PkiError, match="bogus"):
        revoke(fresh, serial=hub_serial + 1, reason="bogus")
    assert load_revoked_serials(crl_path) == {city_serial, hub_serial}
    assert sorted(p.name for p in fresh.iterdir()) == [
        "ca.crt",
        "ca.key",
        "cities",
        "crl.pem",
        "hub.crt",
        "hub.key",
    ]


def test_crl_signed_by_another_ca_is_refused(fresh: Path, pki: Path) -> None:
    # pki's CRL is genuine but signed by a different CA than fresh/ca.crt.
    shutil.copyfile(pki / "crl.pem", fresh / "crl.pem")
    with pytest.raises(PkiError, match="not signed by the province CA"):
        load_revoked_serials(fresh / "crl.pem")
    # revoke() must not build on top of (and re-sign) a foreign list either.
    with pytest.raises(PkiError, match="not signed by the province CA"):
        revoke(fresh, code="620100")
    assert load_revoked_serials(pki / "crl.pem") == frozenset()
    assert load_revoked_serials(fresh / "nonexistent.pem") == frozenset()


def test_init_twice_refuses_without_overwrite(tmp_path: Path) -> None:
    init_pki(tmp_path, city_codes=[], hub_hosts=["localhost"])
    ca_key = (tmp_path / "ca.key").read_bytes()

    with pytest.raises(PkiError, match="overwrite"):
        init_pki(tmp_path, city_codes=[], hub_hosts=["localhost"])
    assert (tmp_path / "ca.key").read_bytes() == ca_key

    init_pki(tmp_path, city_codes=[], hub_hosts=["localhost"], overwrite=True)
    assert (tmp_path / "ca.key").read_bytes() != ca_key
    assert _mode(tmp_path / "ca.key") == 0o600


def test_init_refuses_a_nodes_copy_of_the_pki(tmp_path: Path) -> None:
    """A node's copy holds ca.crt without ca.key (what the deployment guide hands a node):
    init must not put a new CA there, which every real certificate would fail against."""
    init_pki(tmp_path, city_codes=["620100"], hub_hosts=["localhost"])
    (tmp_path / "ca.key").unlink()
    held = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    with pytest.raises(PkiError, match=r"ca\.crt already exists.*overwrite"):
        init_pki(tmp_path, city_codes=["620100"], hub_hosts=["localhost"])
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == held
    assert not (tmp_path / "ca.key").exists()


def test_bad_city_code_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="62010x"):
        init_pki(tmp_path, city_codes=["620100", "62010x"])
    # Validation happens before anything is written.
    assert list(tmp_path.iterdir()) == []
    # The code is checked before the (missing) CA, so the message is about it.
    with pytest.raises(PkiError, match="'6201'"):
        issue_city(tmp_path, "6201")
    with pytest.raises(PkiError, match="'６２０１００'"):  # full-width digits
        issue_city(tmp_path, "６２０１００")
    with pytest.raises(PkiError, match="620100"):
        init_pki(tmp_path, city_codes="620100")


def test_mutual_tls_call_reports_client_city(pki: Path) -> None:
    hub = load_hub_tls(pki)
    city = load_city_tls(pki, "620200")

    def identity(data: bytes) -> bytes:
        return data

    def who_am_i(request: bytes, context: grpc.ServicerContext) -> bytes:
        pem = context.auth_context()["x509_pem_cert"][0]
        code = identity_from_pem(pem).code
        assert code is not None
        return code.encode()

    handler = grpc.method_handlers_generic_handler(
        "fedsync.test.Whoami",
        {
            "Ask": grpc.unary_unary_rpc_method_handler(
                who_am_i, request_deserializer=identity, response_serializer=identity
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    server_creds = grpc.ssl_server_credentials(
        [(hub.private_key, hub.cert_chain)],
        root_certificates=hub.ca_cert,
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", server_creds)
    assert port > 0
    server.start()
    try:
        client_creds = grpc.ssl_channel_credentials(
            root_certificates=city.ca_cert,
            private_key=city.private_key,
            certificate_chain=city.cert_chain,
        )
        with grpc.secure_channel(f"127.0.0.1:{port}", client_creds) as channel:
            call: Callable[..., Any] = channel.unary_unary(
                "/fedsync.test.Whoami/Ask",
                request_serializer=identity,
                response_deserializer=identity,
            )
            assert call(b"", timeout=10) == b"620200"
    finally:
        server.stop(None)


def test_pki_commands_name_their_flags_not_python_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sync.cli import main

    pki = tmp_path / "pki"
    assert main(["pki", "init", "--dir", str(pki)]) == 0
    ca_key = (pki / "ca.key").read_bytes()
    capsys.readouterr()
    assert main(["pki", "init", "--dir", str(pki)]) == 2
    err = capsys.readouterr().err
    assert "fedsync pki init --overwrite" in err and "overwrite=True" not in err
    assert (pki / "ca.key").read_bytes() == ca_key
    empty = tmp_path / "empty"
    assert main(["pki", "issue", "--dir", str(empty), "--city", "620100"]) == 2
    err = capsys.readouterr().err
    assert "fedsync pki init" in err and "init_pki" not in err
    assert not (empty / "cities" / "620100.crt").exists()


def test_pki_commands_refuse_an_empty_folder_a_missing_ca_and_a_bad_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pki export --to ''` wrote a city's private key into the shell's folder; revoking in a
    folder without a CA said "unknown city"; a hub name no resolver gives was certified."""
    from sync.cli import main

    pki = tmp_path / "pki"
    assert main(["pki", "init", "--dir", str(pki)]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["pki", "export", "--dir", str(pki), "--city", "620100", "--to", ""],
        ["pki", "export", "--dir", " ", "--city", "620100", "--to", "out"],
        ["pki", "init", "--dir", ""],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "name the folder (an empty value would be the current one)" in (
            capsys.readouterr().err
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pki"]  # nothing written
    assert main(["pki", "revoke", "--dir", str(tmp_path / "nowhere"), "--city", "620100"]) == 2
    assert "holds no province CA (ca.crt)" in capsys.readouterr().err
    for host in ("bad host!", "-hub.example", "256.1.1.1", "fe80::1%eth0", "a" * 64 + ".x"):
        assert main(["pki", "init", "--dir", str(tmp_path / "other"), f"--hub-host={host}"]) == 2
        assert f"invalid hub host {host!r}" in capsys.readouterr().err
        assert not (tmp_path / "other").exists()
    # A Docker service name (an underscore) is a name a city resolves.
    names = ["hub.gansu.example", "10.0.0.5", "::1", "localhost", "fedsync_hub"]
    argv = ["pki", "init", "--dir", str(tmp_path / "good")]
    assert main([*argv, *(a for n in names for a in ("--hub-host", n))]) == 0
