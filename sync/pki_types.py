"""The PKI's names and values: the SAN URIs that name a node, the constants certificates
are built with, the file names of a PKI directory, what a certificate and a CRL say, and
the PKI's errors. :mod:`sync.pki` re-exports the public ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

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
