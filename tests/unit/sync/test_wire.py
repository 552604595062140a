"""The wire-format walker that finds each envelope's body bytes as they travelled."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync import errors
from sync.envelopes import build_envelope, check_structure
from sync.link import encode_push_request
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.validation import INT64_MAX, broken_rule, check_int64_range, clamp_to_int64
from sync.wire import (
    WireError,
    envelope_body,
    iter_fields,
    push_bodies,
    read_varint,
    walk_push_bodies,
)


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def ld(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


SUGGESTION = 13  # Envelope.suggestion_batch
ESCALATION = 12  # Envelope.escalation


def batch_body(**fields) -> pb.SuggestionBatch:
    return pb.SuggestionBatch(batch_date="2026-01-05", batch_number=1, **fields)


def test_varints_round_trip_and_bad_ones_are_named():
    for value in (0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1):
        assert read_varint(varint(value) + b"\x00", 0) == (value, len(varint(value)))
    with pytest.raises(WireError, match="truncated varint"):
        read_varint(b"\x80\x80", 0)
    with pytest.raises(WireError, match="longer than 10 bytes"):
        read_varint(b"\xff" * 11, 0)


def test_every_wire_type_is_skipped_by_its_length():
    data = (
        key(1, 0)
        + varint(2**64 - 1)
        + key(2, 1)
        + b"\x01" * 8
        + ld(3, b"abc")
        + key(4, 5)
        + b"\x02" * 4
        + key(5, 3)  # a group with a varint inside, closed by its end-group key
        + key(1, 0)
        + varint(7)
        + key(5, 4)
        + key(6, 0)
        + b"\x01"
    )
    fields = list(iter_fields(data))
    assert [(n, t) for n, t, _, _ in fields] == [(1, 0), (2, 1), (3, 2), (4, 5), (5, 3), (6, 0)]
    _, _, start, stop = fields[2]
    assert data[start:stop] == b"abc"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (ld(3, b"abc")[:-1], "runs past the end"),
        (key(2, 1) + b"\x00" * 7, "runs past the end"),
        (key(4, 5) + b"\x00", "runs past the end"),
        (key(1, 6) + b"\x00", "wire type 6"),
        (key(1, 4), "wire type 4"),
        (b"\x00\x01", "field number 0"),
        (key(5, 3) + key(1, 0) + b"\x01", "group 5 is not closed"),
        (key(5, 3) + key(6, 4), "closed by end-group 6"),
    ],
    ids=[
        "short-payload",
        "short-fixed64",
        "short-fixed32",
        "type-6",
        "stray-end",
        "zero",
        "group",
        "mismatched-group",
    ],
)
def test_malformed_wire_is_refused(data, words):
    with pytest.raises(WireError, match=words):
        list(iter_fields(data))


def test_python_envelopes_yield_exactly_the_serialized_body():
    bodies = [batch_body(classified_by="clerk"), pb.Heartbeat(backlog=3)]
    envs = [
        build_envelope(city_code="620100", epoch="e", seq=i, body=b) for i, b in enumerate(bodies)
    ]
    raw = push_bodies(encode_push_request([e.SerializeToString() for e in envs]))
    assert [(r.kind, r.data) for r in raw] == [
        ("suggestion_batch", bodies[0].SerializeToString(deterministic=True)),
        ("heartbeat", bodies[1].SerializeToString(deterministic=True)),
    ]


def test_unknown_fields_and_wrong_wire_types_are_not_the_body():
    body = batch_body().SerializeToString()
    envelope = (
        key(99, 0)
        + varint(5)
        + key(SUGGESTION, 0)  # the body's number with a varint: an unknown field to protobuf
        + varint(1)
        + ld(SUGGESTION, body)
        + ld(1234, b"future field")
    )
    raw = envelope_body(envelope)
    assert raw == envelope_body(envelope) and raw.kind == "suggestion_batch" and raw.data == body
    parsed = pb.Envelope.FromString(envelope)
    assert parsed.WhichOneof("body") == "suggestion_batch"


def test_a_repeated_member_is_the_concatenation_as_protobuf_merges_it():
    first = batch_body().SerializeToString()
    second = pb.SuggestionBatch(classified_by="clerk").SerializeToString()
    envelope = ld(SUGGESTION, first) + ld(3, b"") + ld(SUGGESTION, second)
    raw = envelope_body(envelope)
    assert raw.data == first + second
    merged = pb.Envelope.FromString(envelope).suggestion_batch
    assert merged == pb.SuggestionBatch.FromString(raw.data)
    assert merged.classified_by == "clerk" and merged.batch_number == 1


def test_a_later_oneof_member_replaces_the_earlier_one():
    escalation = pb.Escalation(ticket_id="T-1").SerializeToString()
    suggestion = batch_body().SerializeToString()
    envelope = ld(SUGGESTION, suggestion) + ld(ESCALATION, escalation) + ld(SUGGESTION, suggestion)
    assert envelope_body(envelope).data == suggestion  # the escalation dropped the first one
    assert pb.Envelope.FromString(envelope).suggestion_batch == batch_body()
    envelope = ld(SUGGESTION, suggestion) + ld(ESCALATION, escalation)
    raw = envelope_body(envelope)
    assert (raw.kind, raw.data) == ("escalation", escalation)
    assert pb.Envelope.FromString(envelope).WhichOneof("body") == "escalation"


def test_no_body_is_reported_as_none():
    assert envelope_body(ld(1, b"620100")).kind is None


def test_a_malformed_envelope_is_named_by_its_position():
    good = build_envelope(city_code="620100", epoch="e", seq=1, body=batch_body())
    bad = ld(1, b"620100") + key(SUGGESTION, 2) + varint(50) + b"short"
    with pytest.raises(WireError) as info:
        push_bodies(encode_push_request([good.SerializeToString(), bad]))
    assert info.value.where == "envelopes[1]" and info.value.index == 1
    assert "runs past the end" in str(info.value)
    # A request cut in the middle of its second envelope: that envelope is the culprit.
    whole = encode_push_request([good.SerializeToString()] * 2)
    with pytest.raises(WireError) as info:
        push_bodies(whole[:-3])
    assert info.value.where == "envelopes[1]"


def test_digest_over_the_travelled_bytes_is_accepted_and_they_are_stored():
    body = batch_body()
    # An explicit default (classified_by "") as other encoders write it: not Python's bytes.
    travelled = body.SerializeToString() + ld(4, b"")
    assert pb.SuggestionBatch.FromString(travelled) == body
    env = build_envelope(city_code="620100", epoch="e", seq=1, body=body)
    env.content_digest = hashlib.sha256(travelled).digest()
    assert check_structure(env, index=0, travelled=travelled) == ("suggestion_batch", travelled)
    with pytest.raises(errors.MalformedEnvelope, match="does not match"):
        check_structure(env, index=0)  # the old rule: the hub's re-encoding
    # A sender that hashed the canonical form still passes; the canonical form is stored.
    env = build_envelope(city_code="620100", epoch="e", seq=1, body=body)
    canonical = body.SerializeToString(deterministic=True)
    assert check_structure(env, index=0, travelled=travelled) == ("suggestion_batch", canonical)


def test_an_envelope_seq_beyond_int64_is_malformed():
    env = build_envelope(city_code="620100", epoch="e", seq=2**63, body=batch_body())
    with pytest.raises(errors.MalformedEnvelope, match="above 9223372036854775807") as info:
        check_structure(env, index=4)
    assert info.value.field == "envelopes[4].seq"


def test_uint64_beyond_int64_breaks_a_rule_naming_the_field():
    receipt = pb.NoticeReceipt(notice_seq=2**64 - 1, action=pb.READ)
    reason = broken_rule("notice_receipt", receipt, tz_name="Asia/Shanghai")
    assert reason is not None and reason.startswith("notice_seq is 18446744073709551615")
    trace = pb.TicketTrace(request_notice_seq=2**63, ticket_id="T")
    assert "request_notice_seq" in (broken_rule("ticket_trace", trace, tz_name="UTC") or "")
    assert (
        broken_rule(
            "notice_receipt", pb.NoticeReceipt(notice_seq=INT64_MAX, action=pb.READ), tz_name="UTC"
        )
        is None
    )
    # The walk goes into nested messages and names the path.
    envelope = pb.Envelope(seq=1, heartbeat=pb.Heartbeat(backlog=5, notice_cursor=2**63))
    with pytest.raises(ValueError, match=r"^heartbeat\.notice_cursor is 9223372036854775808"):
        check_int64_range(envelope)


def test_clamping_a_heartbeat_keeps_what_fits():
    hb = pb.Heartbeat(backlog=2**64 - 1, oldest_unsent_age_seconds=12, notice_cursor=2**63)
    assert clamp_to_int64(hb) == ["backlog", "notice_cursor"]
    assert (hb.backlog, hb.oldest_unsent_age_seconds, hb.notice_cursor) == (
        INT64_MAX,
        12,
        INT64_MAX,
    )
    assert clamp_to_int64(hb) == []


def request_of(*envelopes: bytes) -> bytes:
    return b"".join(ld(1, e) for e in envelopes)


@pytest.mark.parametrize(
    "envelope",
    [
        ld(SUGGESTION, batch_body().SerializeToString()),
        # a member twice: merged, so the concatenation
        ld(SUGGESTION, batch_body().SerializeToString())
        + ld(SUGGESTION, pb.SuggestionBatch(classified_by="c").SerializeToString()),
        # a member replaced by another one
        ld(SUGGESTION, batch_body().SerializeToString())
        + ld(ESCALATION, pb.Escalation(ticket_id="T").SerializeToString()),
        # an explicit default outside the body (seq 0), an overlong varint, unknown fields
        key(3, 0) + b"\x00" + ld(SUGGESTION, batch_body().SerializeToString()),
        key(3, 0) + b"\x81\x00" + ld(SUGGESTION, b""),
        ld(999, b"x") + key(SUGGESTION, 0) + b"\x05" + ld(ESCALATION, b"\x0a\x01T"),
        ld(1, b"620100"),
    ],
    ids=["plain", "twice", "replaced", "explicit-zero", "overlong", "unknown", "no-body"],
)
def test_the_fast_path_agrees_with_the_walker_and_the_parser(envelope):
    good = build_envelope(city_code="620100", epoch="e", seq=1, body=batch_body())
    request = request_of(good.SerializeToString(), envelope, good.SerializeToString())
    fast, walked = push_bodies(request), walk_push_bodies(request)
    assert fast == walked
    parsed = pb.PushRequest.FromString(request).envelopes[1]
    kind = parsed.WhichOneof("body")
    assert fast[1].kind == kind
    if kind is not None:
        body = getattr(parsed, kind)
        assert type(body).FromString(fast[1].data) == body


def test_a_request_cut_short_is_named_by_the_fast_path_too():
    good = build_envelope(city_code="620100", epoch="e", seq=1, body=batch_body())
    request = request_of(good.SerializeToString(), good.SerializeToString())
    with pytest.raises(WireError) as info:
        push_bodies(request[:-1])
    assert info.value.where == "envelopes[1]"


_BODY_SAMPLES = {
    SUGGESTION: [
        batch_body().SerializeToString(),
        pb.SuggestionBatch(classified_by="c", batch_number=7).SerializeToString(),
        ld(4, b""),  # an explicit default, as protobufjs writes it
    ],
    ESCALATION: [pb.Escalation(ticket_id="T", reason="r").SerializeToString(), b""],
    17: [pb.Heartbeat(backlog=3).SerializeToString(), key(1, 0) + b"\x00"],
}
_field_chunk = st.one_of(
    st.builds(
        lambda number, i: ld(number, _BODY_SAMPLES[number][i % len(_BODY_SAMPLES[number])]),
        st.sampled_from(sorted(_BODY_SAMPLES)),
        st.integers(0, 5),
    ),
    st.builds(lambda v: key(3, 0) + varint(v), st.integers(0, 2**64 - 1)),
    st.builds(lambda s: ld(2, s.encode()), st.text(max_size=5)),
    st.builds(lambda n, b: ld(n, b), st.integers(100, 2**29 - 1), st.binary(max_size=5)),
    st.builds(lambda n, b: key(n, 5) + b, st.integers(100, 200), st.binary(min_size=4, max_size=4)),
    st.builds(lambda n, b: key(n, 1) + b, st.integers(100, 200), st.binary(min_size=8, max_size=8)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_field_chunk, max_size=6).map(b"".join), min_size=1, max_size=4))
def test_any_envelope_yields_the_bytes_protobuf_parses_as_its_body(envelopes):
    request = request_of(*envelopes)
    parsed = pb.PushRequest.FromString(request)
    fast, walked = push_bodies(request), walk_push_bodies(request)
    assert fast == walked
    for envelope, raw in zip(parsed.envelopes, fast, strict=True):
        kind = envelope.WhichOneof("body")
        assert raw.kind == kind
        if kind is not None:
            body = getattr(envelope, kind)
            assert type(body).FromString(raw.data) == body
