"""The contract as written for other languages: the proto's comments and the README's table.

A client written elsewhere has only these to go by, so the rules the hub enforces must be
stated where it reads them.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROTO = (ROOT / "proto" / "fedsync" / "v1" / "federation.proto").read_text()
README = (ROOT / "README.md").read_text()


def comment_of(message: str, field: str) -> str:
    """The comment lines right above ``field`` in ``message``, joined."""
    body = PROTO[PROTO.index(f"message {message} {{") :]
    body = body[: body.index("\n}")]
    lines = body.splitlines()
    at = next(i for i, line in enumerate(lines) if re.match(rf"\s*\S+ {field} = \d+;", line))
    comment: list[str] = []
    for line in reversed(lines[:at]):
        if not line.strip().startswith("//"):
            break
        comment.insert(0, line.strip()[2:].strip())
    return " ".join(comment)


def refusal_row(problem_words: str) -> list[str]:
    """The cells of the README refusal table's row whose first cell contains the words."""
    for line in README.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and problem_words in cells[0]:
            return cells
    raise AssertionError(f"no row about {problem_words!r} in the README's refusal table")


def test_the_digest_rule_is_spelled_out_for_any_encoder():
    rule = comment_of("Envelope", "content_digest")
    assert "exactly as they travel" in rule and "concatenated" in rule
    assert "deterministic serialization" not in rule  # the old, Python-only wording
    assert "exactly as they travel" in README


def test_a_hello_with_another_major_is_ok_and_a_push_is_refused():
    hello = refusal_row("Hello with another wire-schema major")
    assert "OK" in hello[1] and "compatible = false" in hello[1]
    assert "FAILED_PRECONDITION" not in hello[1]
    push = refusal_row("Push with another wire-schema major")
    assert push[1] == "FAILED_PRECONDITION" and "SCHEMA_UNSUPPORTED" in push[2]
    assert "Hello itself still succeeds" in comment_of("HelloResponse", "compatible")


def test_notice_seqs_are_declared_64_bit():
    assert "64-bit integers" in comment_of("Notice", "seq")
    assert "2^63 - 1" in PROTO[: PROTO.index("syntax")]  # the file's conventions


def test_a_refused_handshake_is_told_apart_from_a_hub_that_is_down():
    assert "Socket closed" in README and "Connection refused" in README
    assert "CERTIFICATE_VERIFY_FAILED" in README and "PEER_DID_NOT_RETURN_A_CERTIFICATE" in README


def test_subscribe_and_sync_error_fields_say_what_the_hub_does():
    assert "or none" in comment_of("SubscribeRequest", "city_code")
    assert "SEQUENCE_GAP only" in comment_of("SyncError", "expected_seq")
    assert "every refusal" in comment_of("SyncError", "acked_through_seq")
