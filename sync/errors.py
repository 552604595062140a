"""Domain exceptions of the federation link.

Hierarchy (the gRPC status each maps to at the edge, see ``sync.rpc_errors``)::

    LinkError                      base of everything the link refuses
    ├── IdentityMismatch           PERMISSION_DENIED   body names another city than the cert
    ├── CertificateRevoked         UNAUTHENTICATED     client certificate on the CRL
    ├── SchemaUnsupported          FAILED_PRECONDITION another wire-schema major version
    ├── BatchTooLarge              RESOURCE_EXHAUSTED  too many envelopes in one Push
    ├── MalformedEnvelope          INVALID_ARGUMENT    structurally invalid; names the field
    ├── SequenceGap                OUT_OF_RANGE        batch starts past the hub's next seq
    └── SequenceConflict           ALREADY_EXISTS      same seq, other digest / stale epoch

A business-rule failure (totals that do not add up, a period in the future) is *not* an
exception: the envelope is stored as quarantined, see ``sync.validation``.
"""

from __future__ import annotations

#: Most characters of a client's value quoted back in a refusal's message.
SHOWN_CHARS = 64


def shown(value: str) -> str:
    """``value`` quoted for a refusal's message, cut to ``SHOWN_CHARS`` (with its length).

    A refusal travels in the status's trailing metadata, which gRPC clients cap at 16 KiB: a
    message quoting a long value whole would reach the client as RESOURCE_EXHAUSTED ("received
    metadata size exceeds hard limit") instead of the refusal.
    """
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"


class LinkError(Exception):
    """Something the hub refuses; the whole call fails and nothing is stored."""

    def __init__(
        self,
        message: str,
        *,
        acked_through_seq: int = 0,
        seq: int = 0,
        hub_epoch: str = "",
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.acked_through_seq = acked_through_seq
        self.seq = seq
        self.hub_epoch = hub_epoch
        self.field = field


class IdentityMismatch(LinkError):
    """An envelope or request names a city other than the client certificate's."""


class CertificateRevoked(LinkError):
    """The client certificate's serial is on the province CA's revocation list."""


class SchemaUnsupported(LinkError):
    """The wire schema major version is not the hub's."""


class BatchTooLarge(LinkError):
    """More envelopes in one Push than the hub accepts."""


class MalformedEnvelope(LinkError):
    """An envelope cannot be accepted as it stands (missing body, bad digest, bad seq...)."""


class SequenceGap(LinkError):
    """The batch does not continue from the hub's high-water mark; re-send from it."""


class SequenceConflict(LinkError):
    """The city's history disagrees with what the hub holds (restored or re-created store)."""
