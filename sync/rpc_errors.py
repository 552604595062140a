"""Mapping between link exceptions and gRPC statuses with structured details.

The hub aborts with a ``google.rpc.Status`` whose details carry a ``fedsync.v1.SyncError``;
the city decodes it back into the same exception class so its code reacts to a type, not to
message text.
"""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from sync import errors
from sync.pb.fedsync.v1 import federation_pb2 as pb

_BY_CLASS: dict[type[errors.LinkError], tuple[grpc.StatusCode, int, int]] = {
    errors.IdentityMismatch: (
        grpc.StatusCode.PERMISSION_DENIED,
        code_pb2.PERMISSION_DENIED,
        pb.SyncError.IDENTITY_MISMATCH,
    ),
    errors.CertificateRevoked: (
        grpc.StatusCode.UNAUTHENTICATED,
        code_pb2.UNAUTHENTICATED,
        pb.SyncError.CERTIFICATE_REVOKED,
    ),
    errors.SchemaUnsupported: (
        grpc.StatusCode.FAILED_PRECONDITION,
        code_pb2.FAILED_PRECONDITION,
        pb.SyncError.SCHEMA_UNSUPPORTED,
    ),
    errors.BatchTooLarge: (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        code_pb2.RESOURCE_EXHAUSTED,
        pb.SyncError.BATCH_TOO_LARGE,
    ),
    errors.MalformedEnvelope: (
        grpc.StatusCode.INVALID_ARGUMENT,
        code_pb2.INVALID_ARGUMENT,
        pb.SyncError.MALFORMED_ENVELOPE,
    ),
    errors.SequenceGap: (
        grpc.StatusCode.OUT_OF_RANGE,
        code_pb2.OUT_OF_RANGE,
        pb.SyncError.SEQUENCE_GAP,
    ),
    errors.SequenceConflict: (
        grpc.StatusCode.ALREADY_EXISTS,
        code_pb2.ALREADY_EXISTS,
        pb.SyncError.SEQUENCE_CONFLICT,
    ),
}
_BY_REASON = {reason: cls for cls, (_, _, reason) in _BY_CLASS.items()}


def to_status(exc: errors.LinkError) -> grpc.Status:
    """The status a servicer aborts with for ``exc``."""
    _, code, reason = _BY_CLASS[type(exc)]
    detail = pb.SyncError(
        reason=reason,  # type: ignore[arg-type]
        acked_through_seq=exc.acked_through_seq,
        # Scoped to gaps by the proto: elsewhere a value here would read as an instruction.
        expected_seq=exc.acked_through_seq + 1 if isinstance(exc, errors.SequenceGap) else 0,
        seq=exc.seq,
        hub_epoch=exc.hub_epoch,
        field=exc.field,
    )
    status = status_pb2.Status(code=code, message=exc.message)
    status.details.add().Pack(detail)
    return rpc_status.to_status(status)


def from_rpc_error(err: grpc.RpcError) -> errors.LinkError | None:
    """The link exception a failed call carries, or None for transport errors and the like."""
    try:
        status = rpc_status.from_call(err)
    except ValueError:
        return None
    if status is None:
        return None
    for any_detail in status.details:
        detail = pb.SyncError()
        if any_detail.Unpack(detail):
            cls = _BY_REASON.get(detail.reason)
            if cls is None:
                return None
            return cls(
                status.message,
                acked_through_seq=detail.acked_through_seq,
                seq=detail.seq,
                hub_epoch=detail.hub_epoch,
                field=detail.field,
            )
    return None
