"""Building the federation's X.509 objects: the CA, node certificates and CRLs, with the
extensions each role needs. The lifecycle (init, issue, revoke, export) and loading are
:mod:`sync.pki`'s."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# --------------------------------------------------------------------------
# Building certificates and CRLs
# --------------------------------------------------------------------------
from sync.pki_types import (
    _BACKDATE,
    _CA_CN,
    _CA_VALIDITY,
    _CRL_VALIDITY,
    _HUB_CN,
    _ORG,
    CITY_URI_PREFIX,
    HUB_URI,
    PkiError,
    _Ca,
)


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
