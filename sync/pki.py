"""Province certificate authority and per-node certificates for fedsync.

The province hub and the city nodes authenticate each other with mutual TLS.
This module owns the on-disk PKI layout::

    DIR/ca.crt, DIR/ca.key          province CA (ECDSA P-256, 10 years)
    DIR/hub.crt, DIR/hub.key        hub server/client certificate
    DIR/cities/<code>.crt, .key     one client certificate per city
    DIR/crl.pem                     CA-signed revocation list

A peer's identity is carried in a SubjectAlternativeName URI
(``urn:fedsync:city:<code>`` or ``urn:fedsync:hub``) rather than the subject
CN, because SAN URIs are what gRPC exposes reliably and cannot be confused with
a host name.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CITY_URI_PREFIX",
    "HUB_URI",
    "HubRevoked",
    "NodeIdentity",
    "PkiError",
    "RevocationList",
    "Revocations",
    "TlsFiles",
    "export_node",
    "identity_from_pem",
    "init_pki",
    "issue_city",
    "issue_hub",
    "load_city_tls",
    "load_hub_tls",
    "load_revocation_list",
    "load_revoked_serials",
    "revoke",
]

log = logging.getLogger(__name__)

CITY_URI_PREFIX = "urn:fedsync:city:"
HUB_URI = "urn:fedsync:hub"

_CA_CN = "fedsync province CA"
_HUB_CN = "fedsync hub"
_ORG = "fedsync"
# "Ten years" for the CA; 3652 covers the leap days in any 10-year span.
_CA_VALIDITY = timedelta(days=3652)
# City and hub clocks drift; backdating avoids "certificate not yet valid"
# failures on a node whose clock is a little behind the one that issued.
_BACKDATE = timedelta(minutes=5)
# The CRL is consumed by load_revoked_serials, which deliberately ignores
# next_update (a stale list of revocations is still a list of revocations),
# but other tools (openssl verify -crl_check) reject an expired CRL, so give it
# a long but finite life; every revoke() re-signs it anyway.
_CRL_VALIDITY = timedelta(days=365)
# [0-9] rather than \d: \d accepts non-ASCII digits, which would end up in
# file names and SAN URIs.
_CODE_RE = re.compile(r"[0-9]{6}")

_CA_CRT = "ca.crt"
_CA_KEY = "ca.key"
_HUB_CRT = "hub.crt"
_HUB_KEY = "hub.key"
_CRL = "crl.pem"
_CITIES = "cities"

_KEY_MODE = 0o600
_PUBLIC_MODE = 0o644


@dataclass(frozen=True)
class NodeIdentity:
    """Who a certificate belongs to, as read from its SAN URI."""

    kind: Literal["city", "hub"]
    code: str | None
    serial: int
    not_after: datetime


@dataclass(frozen=True)
class TlsFiles:
    """PEM material in the shape grpc's ssl credential functions expect.

    The paths are where the material was read from: Python's ``ssl`` (which the city uses to
    look at the hub's certificate, see ``sync.link``) reads a key pair from files only.
    """

    ca_cert: bytes
    cert_chain: bytes
    private_key: bytes
    cert_path: Path | None = None
    key_path: Path | None = None
    #: The CA's revocation list this node checks its peers against.
    crl_path: Path | None = None


@dataclass(frozen=True)
class RevocationList:
    """A verified CRL's content: its CRL number (RFC 5280 5.2.3) and the revoked serials."""

    number: int
    serials: frozenset[int]


class PkiError(Exception):
    """A PKI operation failed for a reason the operator can fix."""


class HubRevoked(PkiError):
    """The hub presented a certificate that is revoked (or not a hub's): a city refuses it."""


@dataclass(frozen=True)
class _Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def init_pki(
    directory: Path,
    *,
    city_codes: Sequence[str],
    hub_hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 825,
    overwrite: bool = False,
) -> None:
    """Create a new province CA, hub and city certificates and an empty CRL.

    Raises PkiError if ``directory/ca.key`` already exists and ``overwrite`` is
    false, or if any city code or hub host is invalid (checked before anything
    is written). With ``overwrite=True`` every file listed above is replaced;
    city files for codes not in ``city_codes`` are left alone but will no longer
    verify against the new CA.
    """
    codes = _check_codes(city_codes)
    hosts = _check_hosts(hub_hosts)
    validity = _check_days(days)
    directory = Path(directory)
    if (directory / _CA_KEY).exists() and not overwrite:
        raise PkiError(
            f"{directory / _CA_KEY} already exists; refusing to replace the "
            "province CA (pass overwrite=True to start a new PKI)"
        )

    now = datetime.now(UTC)
    ca = _new_ca(now)
    hub = _build_hub(ca, hosts, validity, now)
    cities = {code: _build_city(ca, code, validity, now) for code in codes}
    crl = _build_crl(ca, revoked=(), number=1, now=now)

    (directory / _CITIES).mkdir(parents=True, exist_ok=True)
    for code, (cert, key) in cities.items():
        _write_pair(_city_paths(directory, code), cert, key)
    _write_pair((directory / _HUB_CRT, directory / _HUB_KEY), hub[0], hub[1])
    _atomic_write(directory / _CRL, crl.public_bytes(serialization.Encoding.PEM), _PUBLIC_MODE)
    # ca.key goes last: its presence is what marks an initialised PKI, so an
    # init interrupted half-way can simply be re-run without overwrite=True.
    _write_pair((directory / _CA_CRT, directory / _CA_KEY), ca.cert, ca.key)


def issue_city(directory: Path, code: str, *, days: int = 825) -> tuple[Path, Path]:
    """Issue (or re-issue, with a fresh key and serial) a city's certificate.

    Returns the paths of the certificate and the private key. The previous
    certificate, if any, is replaced but not revoked; call revoke() first if
    it must stop working before it expires.
    """
    code = _check_code(code)
    validity = _check_days(days)
    directory = Path(directory)
    ca = _load_ca(directory)
    cert, key = _build_city(ca, code, validity, datetime.now(UTC))
    (directory / _CITIES).mkdir(parents=True, exist_ok=True)
    paths = _city_paths(directory, code)
    _write_pair(paths, cert, key)
    return paths


def issue_hub(directory: Path, *, hosts: Sequence[str], days: int = 825) -> tuple[Path, Path]:
    """Issue (or re-issue) the hub certificate for the given DNS names / IPs.

    Returns the paths of the certificate and the private key.
    """
    checked = _check_hosts(hosts)
    validity = _check_days(days)
    directory = Path(directory)
    ca = _load_ca(directory)
    cert, key = _build_hub(ca, checked, validity, datetime.now(UTC))
    paths = (directory / _HUB_CRT, directory / _HUB_KEY)
    _write_pair(paths, cert, key)
    return paths


def revoke(
    directory: Path,
    *,
    code: str | None = None,
    serial: int | None = None,
    reason: str = "unspecified",
) -> int:
    """Add a certificate to the CA-signed CRL and return its serial.

    Give exactly one of ``code`` (revokes that city's current certificate) or
    ``serial``. ``reason`` is an RFC 5280 reason, either as its CRL spelling
    ("keyCompromise") or its Python name ("key_compromise"). Revoking a serial
    that is already on the CRL changes nothing.
    """
    if (code is None) == (serial is None):
        raise PkiError("revoke needs exactly one of code= or serial=")
    directory = Path(directory)
    flag = _parse_reason(reason)
    if code is not None:
        code = _check_code(code)
        crt_path = _city_paths(directory, code)[0]
        if not crt_path.is_file():
            raise PkiError(f"unknown city {code!r}: {crt_path} does not exist")
        target = _load_cert(crt_path).serial_number
    else:
        assert serial is not None
        # bool is an int subclass; revoke(serial=True) is surely a mistake.
        if isinstance(serial, bool) or not isinstance(serial, int) or serial <= 0:
            raise PkiError(f"serial must be a positive integer, got {serial!r}")
        target = serial

    ca = _load_ca(directory)
    crl_path = directory / _CRL
    # Revocation is read-modify-write of crl.pem; two concurrent revokes must
    # not lose each other's entry, so serialise them on the directory itself
    # (no extra lock file to clutter the layout).
    with _dir_lock(directory):
        previous: list[x509.RevokedCertificate] = []
        number = 1
        if crl_path.exists():
            old = _load_verified_crl(crl_path, ca.cert)
            if old.get_revoked_certificate_by_serial_number(target) is not None:
                return target
            previous = list(old)
            number = _crl_number(old) + 1
        now = datetime.now(UTC)
        entry = x509.RevokedCertificateBuilder().serial_number(target).revocation_date(now)
        # RFC 5280 5.3.1: omit the reason code rather than say "unspecified".
        if flag is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(flag), critical=False)
        crl = _build_crl(ca, revoked=[*previous, entry.build()], number=number, now=now)
        _atomic_write(crl_path, crl.public_bytes(serialization.Encoding.PEM), _PUBLIC_MODE)
    return target


def export_node(directory: Path, target: Path, *, code: str | None = None) -> list[Path]:
    """Copy into ``target`` what one node needs, and nothing else: ``ca.crt``, ``crl.pem``
    and the node's own certificate and key (``code``: that city's; None: the hub's), laid out
    as that node's ``pki_dir`` expects. Returns the files written.

    A node that is given the whole PKI directory holds the CA key and every other node's key:
    one broken container would then be every node. Re-running refreshes the copies (after a
    revocation, the CRL), each replaced atomically so a running node never reads half a file.
    """
    directory, target = Path(directory), Path(target)
    if code is not None:
        code = _check_code(code)
        pair = _city_paths(directory, code)
        out_pair = _city_paths(target, code)
    else:
        pair = (directory / _HUB_CRT, directory / _HUB_KEY)
        out_pair = (target / _HUB_CRT, target / _HUB_KEY)
    files = [
        (directory / _CA_CRT, target / _CA_CRT, _PUBLIC_MODE, "CA certificate"),
        (directory / _CRL, target / _CRL, _PUBLIC_MODE, "CRL"),
        (pair[0], out_pair[0], _PUBLIC_MODE, "certificate"),
        (pair[1], out_pair[1], _KEY_MODE, "private key"),
    ]
    contents = [(_read(src, what), dst, mode) for src, dst, mode, what in files]
    out_pair[0].parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for data, dst, mode in contents:
        _atomic_write(dst, data, mode)
    return [dst for _, dst, _ in contents]


def load_revoked_serials(crl_path: Path) -> frozenset[int]:
    """Return the serials on the CRL, after checking the CA signed it.

    The CA certificate is taken from ``ca.crt`` next to the CRL. A missing CRL
    means nothing is revoked; a CRL that does not verify raises PkiError so a
    forged or foreign list can neither add nor hide revocations.
    """
    crl_path = Path(crl_path)
    if not crl_path.exists():
        return frozenset()
    return load_revocation_list(crl_path).serials


def load_revocation_list(crl_path: Path) -> RevocationList:
    """The CRL at ``crl_path`` (which must exist), verified against ``ca.crt`` next to it.

    Its number lets a reader refuse an older list put back in place of a newer one (which
    would re-admit certificates revoked in between).
    """
    crl_path = Path(crl_path)
    ca_path = crl_path.parent / _CA_CRT
    if not ca_path.is_file():
        raise PkiError(f"cannot verify {crl_path}: CA certificate {ca_path} is missing")
    crl = _load_verified_crl(crl_path, _load_cert(ca_path))
    return RevocationList(
        number=_crl_number(crl), serials=frozenset(entry.serial_number for entry in crl)
    )


class Revocations:
    """The CA's revocation list, re-read when the file changes (checked at most once a second).

    Fails closed: it cannot be built without a valid CRL (``fedsync pki init`` writes an empty
    one), and a replacement that is missing, does not verify, or carries a lower CRL number
    than the list in use (an older list put back, which would re-admit certificates revoked
    since) is logged and ignored, keeping the newer list.
    """

    def __init__(self, crl_path: Path) -> None:
        self._path = Path(crl_path)
        self._checked = 0.0
        self._lock = threading.Lock()
        try:
            self._stamp: tuple[int, int, int] | None = self._file_stamp()
            self._list = load_revocation_list(self._path)
        except (OSError, PkiError) as exc:
            raise PkiError(
                f"cannot use the revocation list {crl_path}: {exc} (copy crl.pem from the "
                "PKI directory; `fedsync pki init` creates an empty one)"
            ) from None

    @property
    def number(self) -> int:
        """The CRL number of the list in use."""
        return self._list.number

    def _file_stamp(self) -> tuple[int, int, int]:
        st = self._path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _refresh(self) -> None:
        try:
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return
            fresh = load_revocation_list(self._path)
        except (OSError, PkiError) as exc:
            log.error("keeping the previous revocation list: %s", exc)
            return
        self._stamp = stamp
        if fresh.number < self._list.number:
            log.error(
                "keeping revocation list number %d: %s holds number %d, an older list "
                "(putting it back would re-admit certificates revoked since)",
                self._list.number,
                self._path,
                fresh.number,
            )
            return
        self._list = fresh

    def is_revoked(self, serial: int) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._checked > 1.0:
                self._checked = now
                self._refresh()
            return serial in self._list.serials


def identity_from_pem(pem: bytes) -> NodeIdentity:
    """Say which fedsync node a (PEM) certificate belongs to.

    This only reads the certificate: it does not check the signature, so call
    it on certificates the TLS layer has already verified against the CA.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from exc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise PkiError(
            f"certificate {cert.subject.rfc4514_string()!r} has no subjectAltName, "
            "so it is not a fedsync node certificate"
        ) from None

    found: list[tuple[Literal["city", "hub"], str | None]] = []
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri == HUB_URI:
            found.append(("hub", None))
        elif uri.startswith(CITY_URI_PREFIX):
            code = uri[len(CITY_URI_PREFIX) :]
            if not _CODE_RE.fullmatch(code):
                raise PkiError(f"certificate names malformed city URI {uri!r}")
            found.append(("city", code))
    if not found:
        raise PkiError(
            f"certificate {cert.subject.rfc4514_string()!r} carries no "
            f"{HUB_URI!r} or {CITY_URI_PREFIX}<code> URI"
        )
    # A certificate claiming two identities is never issued by this module;
    # picking one would let a mis-issued cert act as whichever is convenient.
    if len(set(found)) > 1:
        claims = ", ".join(sorted(f"{k}:{c}" if c else k for k, c in set(found)))
        raise PkiError(f"certificate claims several fedsync identities: {claims}")
    kind, found_code = found[0]
    return NodeIdentity(
        kind=kind,
        code=found_code,
        serial=cert.serial_number,
        not_after=cert.not_valid_after_utc,
    )


def load_city_tls(directory: Path, code: str) -> TlsFiles:
    """Read the CA certificate and a city's certificate and key for gRPC."""
    code = _check_code(code)
    directory = Path(directory)
    crt, key = _city_paths(directory, code)
    return _load_tls(directory / _CA_CRT, crt, key, directory / _CRL)


def load_hub_tls(directory: Path) -> TlsFiles:
    """Read the CA certificate and the hub's certificate and key for gRPC."""
    directory = Path(directory)
    return _load_tls(
        directory / _CA_CRT, directory / _HUB_CRT, directory / _HUB_KEY, directory / _CRL
    )


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _check_code(code: str) -> str:
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise PkiError(f"invalid city code {code!r}: expected exactly 6 digits, e.g. '620100'")
    return code


def _check_codes(codes: Sequence[str]) -> list[str]:
    # A bare string is a Sequence[str] too; iterating "620100" would try to
    # issue certificates for "6", "2", ...
    if isinstance(codes, str):
        raise PkiError(f"city_codes must be a list of codes, not the string {codes!r}")
    checked = [_check_code(c) for c in codes]
    dupes = sorted({c for c in checked if checked.count(c) > 1})
    if dupes:
        raise PkiError(f"duplicate city codes: {', '.join(dupes)}")
    return checked


def _check_hosts(hosts: Sequence[str]) -> list[str]:
    if isinstance(hosts, str):
        raise PkiError(f"hub hosts must be a list of names/addresses, not the string {hosts!r}")
    checked: list[str] = []
    for host in hosts:
        if not isinstance(host, str) or not host.strip() or host != host.strip():
            raise PkiError(f"invalid hub host {host!r}")
        if host not in checked:
            checked.append(host)
    # Clients verify the hub's name against these SANs; with none, no client
    # could ever connect, which is better reported now than at handshake time.
    if not checked:
        raise PkiError("the hub certificate needs at least one DNS name or IP address")
    return checked


def _check_days(days: int) -> timedelta:
    if isinstance(days, bool) or not isinstance(days, int) or days <= 0:
        raise PkiError(f"days must be a positive integer, got {days!r}")
    return timedelta(days=days)


def _parse_reason(reason: str) -> x509.ReasonFlags:
    flag: x509.ReasonFlags | None = None
    try:
        flag = x509.ReasonFlags(reason)
    except ValueError:
        flag = x509.ReasonFlags.__members__.get(reason)
    # removeFromCRL only has meaning in delta CRLs, which we do not produce.
    if flag is None or flag is x509.ReasonFlags.remove_from_crl:
        allowed = ", ".join(
            f.value for f in x509.ReasonFlags if f is not x509.ReasonFlags.remove_from_crl
        )
        raise PkiError(f"unknown revocation reason {reason!r}; use one of: {allowed}")
    return flag


# --------------------------------------------------------------------------
# Building certificates and CRLs
# --------------------------------------------------------------------------


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _new_ca(now: datetime) -> _Ca:
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _CA_CN),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        # path_length=0: this CA signs node certificates only, never sub-CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return _Ca(cert=cert, key=key)


def _authority_key_id(ca: _Ca) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _build_leaf(
    ca: _Ca,
    *,
    subject: x509.Name,
    san: list[x509.GeneralName],
    eku: list[x509.ObjectIdentifier],
    validity: timedelta,
    now: datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    # A leaf outliving its issuer fails path validation the day the CA
    # expires anyway; capping keeps not_after honest about when it stops working.
    not_after = min(now + validity, ca.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert, key


def _build_city(
    ca: _Ca, code: str, validity: timedelta, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, code),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "city"),
        ]
    )
    san: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(f"{CITY_URI_PREFIX}{code}"),
        x509.DNSName(f"city-{code}"),
    ]
    return _build_leaf(
        ca,
        subject=subject,
        san=san,
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        validity=validity,
        now=now,
    )


def _build_hub(
    ca: _Ca, hosts: list[str], validity: timedelta, now: datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, _HUB_CN),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORG),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "hub"),
        ]
    )
    san: list[x509.GeneralName] = []
    for host in hosts:
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        try:
            san.append(x509.DNSName(host))
        except ValueError as exc:  # e.g. a non-ASCII name not given as an A-label
            raise PkiError(f"invalid hub host {host!r}: {exc}") from exc
    san.append(x509.UniformResourceIdentifier(HUB_URI))
    return _build_leaf(
        ca,
        subject=subject,
        san=san,
        # clientAuth too: the hub also dials out to city nodes.
        eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        validity=validity,
        now=now,
    )


def _build_crl(
    ca: _Ca,
    *,
    revoked: Sequence[x509.RevokedCertificate],
    number: int,
    now: datetime,
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now)
        .next_update(now + _CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(_authority_key_id(ca), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256())


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(f"{what} {path} does not exist (run init_pki / issue first?)") from None
    except OSError as exc:
        raise PkiError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _parse_cert(data: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise PkiError(f"{path} is not a PEM certificate: {exc}") from exc


def _load_cert(path: Path) -> x509.Certificate:
    return _parse_cert(_read(path, "certificate"), path)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return _parse_key(_read(path, "private key"), path)


def _parse_key(data: bytes, path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise PkiError(f"{path} is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path} is not an EC private key")
    return key


def _load_ca(directory: Path) -> _Ca:
    cert = _load_cert(directory / _CA_CRT)
    key = _load_key(directory / _CA_KEY)
    # Signing with a key that does not match ca.crt would produce certificates
    # that nobody can verify; catch a mixed-up directory here instead.
    if cert.public_key() != key.public_key():
        raise PkiError(f"{directory / _CA_KEY} does not match {directory / _CA_CRT}")
    return _Ca(cert=cert, key=key)


def _load_verified_crl(path: Path, ca_cert: x509.Certificate) -> x509.CertificateRevocationList:
    data = _read(path, "CRL")
    try:
        crl = x509.load_pem_x509_crl(data)
    except ValueError as exc:
        raise PkiError(f"{path} is not a PEM CRL: {exc}") from exc
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise PkiError(f"CA certificate next to {path} does not hold an EC key")
    try:
        valid = crl.issuer == ca_cert.subject and crl.is_signature_valid(public_key)
    except (InvalidSignature, TypeError, ValueError):
        valid = False
    if not valid:
        raise PkiError(f"{path} is not signed by the province CA ({_CA_CRT}); refusing to use it")
    return crl


def _load_tls(ca_path: Path, crt_path: Path, key_path: Path, crl_path: Path) -> TlsFiles:
    ca_pem = _read(ca_path, "CA certificate")
    crt_pem = _read(crt_path, "certificate")
    key_pem = _read(key_path, "private key")
    # A mismatched pair otherwise surfaces as an opaque handshake failure
    # inside gRPC; name the files while we still can.
    if _parse_cert(crt_pem, crt_path).public_key() != _parse_key(key_pem, key_path).public_key():
        raise PkiError(f"{key_path} does not match {crt_path}")
    return TlsFiles(
        ca_cert=ca_pem,
        cert_chain=crt_pem,
        private_key=key_pem,
        cert_path=crt_path,
        key_path=key_path,
        crl_path=crl_path,
    )


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _city_paths(directory: Path, code: str) -> tuple[Path, Path]:
    base = directory / _CITIES
    return base / f"{code}.crt", base / f"{code}.key"


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    # The temp file is created with its final mode in the same open() call, so
    # a private key is never readable by others even for an instant, and
    # O_EXCL refuses to follow a symlink planted at the temp name. os.replace
    # then swaps it in so readers see the old or the new file, never half.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _write_pair(
    paths: tuple[Path, Path], cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    crt_path, key_path = paths
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _atomic_write(key_path, key_pem, _KEY_MODE)
    _atomic_write(crt_path, cert.public_bytes(serialization.Encoding.PEM), _PUBLIC_MODE)


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
