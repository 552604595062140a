"""Building envelopes at the city and checking their structure at the hub.

The content digest is SHA-256 over the body member's bytes exactly as they travel inside the
Envelope (the length-delimited payload of the oneof member; occurrences concatenated when it
appears more than once). That rule holds for any encoder: a sender hashes what it writes. The
hub finds those bytes with ``sync.wire`` and stores them as the record's body. A digest over
the hub's own deterministic re-encoding of the parsed body is accepted too, since senders
built before the rule was spelled out hashed that (for this Python code both are the same
bytes, as ``build_envelope`` writes the deterministic serialization).

Structural problems (no body, wrong digest, a seq that is not allowed for the body kind)
raise ``MalformedEnvelope`` naming the field; business rules on the body's content live in
``sync.validation`` and quarantine instead of refusing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from hashlib import sha256

from google.protobuf.message import Message

from sync import errors
from sync.limits import (
    MAX_TIMESTAMP_NANOS,
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    timestamp_problem,
)
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.validation import INT64_MAX
from sync.version import SCHEMA_VERSION, is_compatible

BodyMessage = (
    pb.StatisticsReport
    | pb.QaReport
    | pb.Escalation
    | pb.SuggestionBatch
    | pb.OvertimeReport
    | pb.NoticeReceipt
    | pb.TicketTrace
    | pb.Heartbeat
)

#: Body kind name (the oneof member) for each body message type.
BODY_KINDS: dict[type[Message], str] = {
    pb.StatisticsReport: "statistics_report",
    pb.QaReport: "qa_report",
    pb.Escalation: "escalation",
    pb.SuggestionBatch: "suggestion_batch",
    pb.OvertimeReport: "overtime_report",
    pb.NoticeReceipt: "notice_receipt",
    pb.TicketTrace: "ticket_trace",
    pb.Heartbeat: "heartbeat",
}
#: Kinds that are link control: never stored, never sequenced.
UNSEQUENCED_KINDS = frozenset({"heartbeat"})
MAX_EPOCH_CHARS = 64


def epoch_problem(epoch: str, name: str) -> str | None:
    """What makes ``epoch`` one the hub cannot keep (``name``: the field, as the error says
    it), or None: it is a key column of at most MAX_EPOCH_CHARS, and PostgreSQL's text
    refuses a NUL."""
    if len(epoch) > MAX_EPOCH_CHARS:
        return f"{name} is longer than {MAX_EPOCH_CHARS} characters"
    if "\x00" in epoch:
        return f"{name} contains a NUL character (U+0000)"
    return None


def body_kind(body: Message) -> str:
    try:
        return BODY_KINDS[type(body)]
    except KeyError:
        raise TypeError(f"{type(body).__name__} is not an envelope body") from None


def digest(body: Message) -> bytes:
    return sha256(body.SerializeToString(deterministic=True)).digest()


def build_envelope(
    *,
    city_code: str,
    epoch: str,
    seq: int,
    body: Message,
    created_at: datetime | None = None,
) -> pb.Envelope:
    """An envelope around ``body``, digest computed. ``seq`` is 0 for heartbeats only."""
    kind = body_kind(body)
    envelope = pb.Envelope(
        city_code=city_code,
        epoch=epoch,
        seq=seq,
        schema_version=SCHEMA_VERSION,
        content_digest=digest(body),
    )
    envelope.created_at.FromDatetime(created_at or datetime.now(UTC))
    getattr(envelope, kind).CopyFrom(body)
    return envelope


def check_structure(
    envelope: pb.Envelope, *, index: int, travelled: bytes | None = None
) -> tuple[str, bytes]:
    """Raise ``MalformedEnvelope``/``SchemaUnsupported`` naming the field.

    ``travelled`` is the body member's bytes as they came over the wire (``sync.wire``);
    without them (a caller holding only the parsed message) the deterministic serialization
    stands in. Returns the body kind and the bytes the hub stores as the record's body:
    those the digest covers (the travelled ones, or the canonical form when the sender
    hashed that).
    """
    # The hot path of every Push: each field is read once, and the "envelopes[i]" prefix is
    # formatted only for an error.
    kind = envelope.WhichOneof("body")
    if kind is None:
        raise errors.MalformedEnvelope(
            f"envelopes[{index}] has no body (one of {', '.join(BODY_KINDS.values())} is required)",
            seq=envelope.seq,
            field=f"envelopes[{index}].body",
        )
    version = envelope.schema_version
    if version != SCHEMA_VERSION and not is_compatible(version):
        raise errors.SchemaUnsupported(
            f"envelopes[{index}].schema_version {errors.shown(version)} is not supported; "
            f"this hub speaks {SCHEMA_VERSION}",
            seq=envelope.seq,
            field=f"envelopes[{index}].schema_version",
        )
    seq = envelope.seq
    if kind in UNSEQUENCED_KINDS:
        if seq != 0:
            raise errors.MalformedEnvelope(
                f"envelopes[{index}] is a {kind} and must have seq 0, not {seq}",
                seq=seq,
                field=f"envelopes[{index}].seq",
            )
        return kind, b""
    if seq == 0:
        raise errors.MalformedEnvelope(
            f"envelopes[{index}] ({kind}) has seq 0; sequenced envelopes start at 1",
            field=f"envelopes[{index}].seq",
        )
    if seq > INT64_MAX:
        # The seq is the record's key, so such an envelope cannot even be quarantined.
        raise errors.MalformedEnvelope(
            f"envelopes[{index}].seq {seq} is above {INT64_MAX}, the largest seq the hub stores",
            field=f"envelopes[{index}].seq",
        )
    epoch = envelope.epoch
    if not epoch:
        raise errors.MalformedEnvelope(
            f"envelopes[{index}] has no epoch", seq=seq, field=f"envelopes[{index}].epoch"
        )
    problem = epoch_problem(epoch, f"envelopes[{index}].epoch")
    if problem:
        raise errors.MalformedEnvelope(problem, seq=seq, field=f"envelopes[{index}].epoch")
    if not envelope.HasField("created_at"):
        # Left out, it would read as 1970-01-01: an escalation decades overdue on the desk,
        # and a floor under PushRequest.acked_before that lets any earlier time through.
        raise errors.MalformedEnvelope(
            f"envelopes[{index}] has no created_at (when it entered the city's outbox)",
            seq=seq,
            field=f"envelopes[{index}].created_at",
        )
    created_at = envelope.created_at
    seconds, nanos = created_at.seconds, created_at.nanos
    # Checked here for every envelope: the field's name is built only for a refusal.
    if not (
        MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS
        and 0 <= nanos <= MAX_TIMESTAMP_NANOS
    ):
        problem = timestamp_problem(seconds, nanos, f"envelopes[{index}].created_at")
        assert problem is not None  # the range check above failed
        # The instant is a column of the record, so such an envelope cannot be quarantined.
        raise errors.MalformedEnvelope(problem, seq=seq, field=f"envelopes[{index}].created_at")
    content_digest = envelope.content_digest
    if len(content_digest) != _DIGEST_SIZE:
        raise errors.MalformedEnvelope(
            f"envelopes[{index}].content_digest must be 32 bytes of SHA-256, got "
            f"{len(content_digest)}",
            seq=seq,
            field=f"envelopes[{index}].content_digest",
        )
    if travelled is not None and sha256(travelled).digest() == content_digest:
        return kind, travelled
    canonical = getattr(envelope, kind).SerializeToString(deterministic=True)
    if sha256(canonical).digest() != content_digest:
        raise errors.MalformedEnvelope(
            f"envelopes[{index}].content_digest does not match its {kind} body (seq {seq}): it "
            f"must be SHA-256 over the {kind} field's bytes as sent",
            seq=seq,
            field=f"envelopes[{index}].content_digest",
        )
    # A sender that hashed the canonical form: store that form, so a record's body is always
    # the bytes its digest covers (anyone can re-check a stored record).
    return kind, canonical


_DIGEST_SIZE = sha256().digest_size


def check_identity(envelopes: Sequence[pb.Envelope], city_code: str) -> None:
    """Every envelope must be in the certificate's name."""
    for index, envelope in enumerate(envelopes):
        if envelope.city_code != city_code:
            raise errors.IdentityMismatch(
                f"envelopes[{index}].city_code is {errors.shown(envelope.city_code)} but the "
                f"client certificate belongs to city {city_code}; a city may push only in its "
                "own name",
                seq=envelope.seq,
                field=f"envelopes[{index}].city_code",
            )
