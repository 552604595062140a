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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sync.pki_build import (
    _build_city,
    _build_crl,
    _build_hub,
    _crl_number,
    _new_ca,
)
from sync.pki_types import (
    _CA_CRT,
    _CA_KEY,
    _CITIES,
    _CODE_RE,
    _CRL,
    _HUB_CRT,
    _HUB_KEY,
    _KEY_MODE,
    _PUBLIC_MODE,
    CITY_URI_PREFIX,
    HUB_URI,
    HubRevoked,
    NodeIdentity,
    PkiError,
    RevocationList,
    TlsFiles,
    _Ca,
)

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

    Raises PkiError if ``directory/ca.key`` or ``directory/ca.crt`` already exists and
    ``overwrite`` is false, or if any city code or hub host is invalid (checked before anything
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
            "province CA (`fedsync pki init --overwrite` starts a new PKI)"
        )
    if (directory / _CA_CRT).exists() and not overwrite:
        # A node's copy of the PKI holds the CA certificate without its key (the hub's and
        # the cities' machines are given exactly that): a new CA there would make every
        # certificate of the province's real CA fail against it.
        raise PkiError(
            f"{directory / _CA_CRT} already exists (without ca.key: a node's copy of the "
            "PKI); refusing to replace the province CA (`fedsync pki init --overwrite` "
            "starts a new PKI)"
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


def hub_hosts(directory: Path) -> list[str]:
    """The DNS names and IPs the hub certificate in ``directory`` is issued for (none when
    there is no hub certificate there)."""
    path = Path(directory) / _HUB_CRT
    if not path.exists():
        return []
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in san if isinstance(name, x509.DNSName | x509.IPAddress)]


def issue_hub(
    directory: Path, *, hosts: Sequence[str] | None = None, days: int = 825
) -> tuple[Path, Path]:
    """Issue (or re-issue) the hub certificate for the given DNS names / IPs; without
    ``hosts``, for the names of the certificate it replaces (a re-issue must not drop the
    address cities dial), else for ``localhost`` and ``127.0.0.1``.

    Returns the paths of the certificate and the private key.
    """
    if not hosts:
        hosts = hub_hosts(directory) or ["localhost", "127.0.0.1"]
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
    if not (directory / _CA_CRT).is_file():
        # Before the city's certificate is looked for: "unknown city" would blame the city.
        raise PkiError(f"{directory} holds no province CA ({_CA_CRT}): give the PKI folder")
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


#: A host name: labels of letters, digits, hyphens (not at either end) and underscores
#: (``fedsync_hub``: a Docker network's service names have them, and resolvers and the
#: hosts file take them), of at most 63 characters; at most 253 in all.
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?"
)
#: Digits and dots alone are an IPv4 address or nothing (``256.1.1.1`` is no host name).
_NUMERIC = re.compile(r"[0-9.]+")


def _is_ip(host: str) -> bool:
    if "%" in host:  # a scoped IPv6 address: a certificate cannot say its interface
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_hosts(hosts: Sequence[str]) -> list[str]:
    if isinstance(hosts, str):
        raise PkiError(f"hub hosts must be a list of names/addresses, not the string {hosts!r}")
    checked: list[str] = []
    for host in hosts:
        if not isinstance(host, str) or not host.strip() or host != host.strip():
            raise PkiError(f"invalid hub host {host!r}")
        if not _is_ip(host) and (not _DNS_NAME.fullmatch(host) or _NUMERIC.fullmatch(host)):
            # A client checks the hub's name against these: one no resolver can give
            # ("bad host!") would make a certificate nobody can connect with.
            raise PkiError(
                f"invalid hub host {host!r}: give a DNS name (letters, digits, hyphens, "
                "underscores and dots, labels of at most 63 characters) or an IP address "
                "(without a %scope)"
            )
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
# Loading
# --------------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PkiError(
            f"{what} {path} does not exist: the province makes its PKI with `fedsync pki init` "
            "and hands each node its files with "
            "`fedsync pki export --dir DIR --city CODE|--hub --to NODE_DIR`"
        ) from None
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
