"""A protobuf wire-format walker: the bytes of each envelope's body exactly as they travelled.

The content digest covers the body member's bytes as the sender wrote them, not a
re-encoding (``sync.envelopes``): encoders legitimately differ (protobufjs writes a proto3
scalar set to its default, Python omits it), so a rule over "the" serialization cannot be
met by every language. Parsing into a message loses those bytes, hence this walker over the
raw ``PushRequest``.

It follows protobuf's parsing rules where they decide which bytes form the body:

- a field is a key varint ``(number << 3) | wire_type``; wire types 0 (varint), 1 (fixed64),
  2 (length-delimited), 5 (fixed32), and 3/4 (groups, only ever unknown here) are skipped
  by their length;
- unknown fields are skipped; a body field number with a wire type other than 2 is an
  unknown field too (that is what the parser makes of it);
- a message field that occurs several times is the merge of its occurrences, and merging is
  parsing the concatenation, so the body's bytes are the occurrences joined in order;
- another member of the same oneof occurring later replaces the earlier one.

Anything that is not well-formed wire format raises ``WireError`` naming the envelope.

Walking in Python costs about 20 µs an envelope, more than the hub's whole ingest budget, so
``push_bodies`` first lets protobuf's C parser do it: the request is parsed with a shadow
message type whose body members are ``bytes`` fields (``_RawPush``), which yields each
member's payload as it travelled. That shortcut keeps only the last occurrence of a field,
so it is taken only when re-serializing the shadow message gives back exactly as many bytes
as arrived: then no field was dropped (no member appeared twice, no oneof member was
replaced) and every payload is the whole body. Anything else (repeated members, overlong
varints, explicit defaults outside the body, malformed bytes) goes through the walker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from sync.pb.fedsync.v1 import federation_pb2 as pb

VARINT, FIXED64, LENGTH_DELIMITED, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5
_MAX_FIELD_NUMBER = (1 << 29) - 1

#: PushRequest.envelopes
_ENVELOPES_FIELD = pb.PushRequest.DESCRIPTOR.fields_by_name["envelopes"].number
#: Envelope field number -> oneof member name, for the members of ``body``.
BODY_MEMBERS: dict[int, str] = {
    f.number: f.name for f in pb.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields
}


def _shadow_push() -> Any:
    """A message type like PushRequest whose envelopes hold only the body members, as bytes.

    Built at runtime in a private pool, so it is no part of the wire contract; every other
    envelope field is an unknown field to it and is kept as is (which the size check needs).
    """
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="fedsync_wire_shadow.proto", package="fedsync.shadow", syntax="proto3"
    )
    envelope = file.message_type.add(name="RawEnvelope")
    envelope.oneof_decl.add(name="body")
    for number, name in BODY_MEMBERS.items():
        envelope.field.add(
            name=name,
            number=number,
            type=field.TYPE_BYTES,
            label=field.LABEL_OPTIONAL,
            oneof_index=0,
        )
    file.message_type.add(name="RawPush").field.add(
        name="envelopes",
        number=_ENVELOPES_FIELD,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".fedsync.shadow.RawEnvelope",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("fedsync.shadow.RawPush"))


class WireError(ValueError):
    """Bytes that are not well-formed protobuf wire format; ``where`` names the culprit."""

    def __init__(self, message: str, *, where: str = "", index: int | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.reason = message
        self.where = where
        #: The envelope's position in the batch, when the problem is inside one.
        self.index = index


class RawBody(NamedTuple):
    """One envelope's body member as it travelled."""

    #: The oneof member ("suggestion_batch"...), or None when the envelope carries no body.
    kind: str | None
    #: The member's payload bytes (occurrences concatenated); b"" without a body.
    data: bytes


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``pos`` and the position after it.

    At most 10 bytes, as protobuf; bits beyond 64 are dropped, as its parser does.
    """
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise WireError(f"truncated varint at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFF_FFFF_FFFF_FFFF, pos
        shift += 7
        if shift > 63:
            raise WireError(f"varint at byte {pos - 10} is longer than 10 bytes")


def iter_fields(
    data: bytes, pos: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int, int]]:
    """Each field of the message in ``data[pos:end]``: (number, wire type, start, stop).

    For wire type 2, ``data[start:stop]`` is the payload (after its length); for a group the
    span covers its contents and the end-group key. Offsets are into ``data``, so walking
    an envelope inside a request copies nothing. Raises ``WireError`` on anything malformed.
    """
    if end is None:
        end = len(data)
    base = pos
    while pos < end:
        key_at = pos
        key = data[pos]
        if key < 0x80:  # one-byte keys and lengths are the rule: skip the call
            pos += 1
        else:
            key, pos = read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0 or number > _MAX_FIELD_NUMBER:
            raise WireError(f"field number {number} at byte {key_at - base} is not valid")
        start = pos
        if wire_type == VARINT:
            _, pos = read_varint(data, pos)
        elif wire_type == FIXED64:
            pos += 8
        elif wire_type == FIXED32:
            pos += 4
        elif wire_type == LENGTH_DELIMITED:
            if pos < end and data[pos] < 0x80:
                start = pos + 1
                pos = start + data[pos]
            else:
                length, start = read_varint(data, pos)
                pos = start + length
        elif wire_type == START_GROUP:
            pos = _skip_group(data, pos, number)
        else:
            raise WireError(
                f"wire type {wire_type} of field {number} at byte {key_at - base} is not valid"
            )
        if pos > end:
            raise WireError(
                f"field {number} at byte {key_at - base} runs past the end of the message"
            )
        yield number, wire_type, start, pos


def _skip_group(data: bytes, pos: int, number: int, depth: int = 0) -> int:
    """The position after the end-group key matching ``number`` (groups nest)."""
    if depth > 64:
        raise WireError("groups nested too deeply")
    end = len(data)
    while pos < end:
        key_at = pos
        key, pos = read_varint(data, pos)
        inner, wire_type = key >> 3, key & 7
        if wire_type == END_GROUP:
            if inner != number:
                raise WireError(f"group {number} closed by end-group {inner} at byte {key_at}")
            return pos
        if wire_type == VARINT:
            _, pos = read_varint(data, pos)
        elif wire_type == FIXED64:
            pos += 8
        elif wire_type == FIXED32:
            pos += 4
        elif wire_type == LENGTH_DELIMITED:
            length, pos = read_varint(data, pos)
            pos += length
        elif wire_type == START_GROUP:
            pos = _skip_group(data, pos, inner, depth + 1)
        else:
            raise WireError(f"wire type {wire_type} at byte {key_at} is not valid")
    raise WireError(f"group {number} is not closed")


def envelope_body(data: bytes, pos: int = 0, end: int | None = None) -> RawBody:
    """The body member of the serialized ``fedsync.v1.Envelope`` in ``data[pos:end]``."""
    kind: str | None = None
    chunks: list[bytes] = []
    for number, wire_type, start, stop in iter_fields(data, pos, end):
        member = BODY_MEMBERS.get(number)
        if member is None or wire_type != LENGTH_DELIMITED:
            continue  # another field of the envelope, or an unknown one
        if member != kind:
            kind, chunks = member, []  # a later oneof member replaces the earlier one
        chunks.append(data[start:stop])
    return RawBody(kind, chunks[0] if len(chunks) == 1 else b"".join(chunks))


_RawPush = _shadow_push()


def push_bodies(request: bytes) -> list[RawBody]:
    """The body of every envelope of a serialized ``fedsync.v1.PushRequest``, in order.

    Raises ``WireError`` naming the envelope (``envelopes[3]``) when one is malformed.
    """
    try:
        shadow = _RawPush.FromString(request)
    except DecodeError:
        return walk_push_bodies(request)  # it names the envelope at fault
    if shadow.ByteSize() != len(request):
        return walk_push_bodies(request)
    bodies = []
    for envelope in shadow.envelopes:
        kind = envelope.WhichOneof("body")
        bodies.append(RawBody(kind, getattr(envelope, kind) if kind else b""))
    return bodies


def walk_push_bodies(request: bytes) -> list[RawBody]:
    """``push_bodies`` by walking the wire format in Python: exact in every case, slow.

    Raises ``WireError`` naming the envelope (``envelopes[3]``) when one is malformed.
    """
    bodies: list[RawBody] = []
    fields = iter_fields(request)
    while True:
        index = len(bodies)
        try:
            field = next(fields, None)
            if field is None:
                return bodies
            number, wire_type, start, stop = field
            if number != _ENVELOPES_FIELD or wire_type != LENGTH_DELIMITED:
                continue  # an unknown field of the request
            bodies.append(envelope_body(request, start, stop))
        except WireError as exc:
            # A framing error between envelopes lies in the one that was being read.
            raise WireError(exc.reason, where=f"envelopes[{index}]", index=index) from None


def push_envelopes(request: bytes) -> list[bytes]:
    """The serialized envelopes of a ``PushRequest`` (to find which one fails to parse)."""
    return [
        request[start:stop]
        for number, wire_type, start, stop in iter_fields(request)
        if number == _ENVELOPES_FIELD and wire_type == LENGTH_DELIMITED
    ]
