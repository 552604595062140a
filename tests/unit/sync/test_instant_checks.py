"""The compiled instant check of every body type agrees with the walk that names a bad
instant: for bodies with instants set at every depth (repeated and nested messages), in and
out of a Timestamp's range, a body passes exactly when the walk finds nothing to name."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf.message import Message

from sync.envelopes import BODY_KINDS
from sync.limits import MAX_TIMESTAMP_NANOS, MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS
from sync.validation import (
    _TIMED,
    RuleBroken,
    _bad_timestamps,
    _fields_to,
    _is_timestamp,
    check_timestamps,
)

TIMESTAMP = "google.protobuf.Timestamp"
SECONDS = [
    MIN_TIMESTAMP_SECONDS - 1,
    MIN_TIMESTAMP_SECONDS,
    0,
    1_795_000_000,
    MAX_TIMESTAMP_SECONDS,
    MAX_TIMESTAMP_SECONDS + 1,
    -(2**62),
    2**62,
]
NANOS = [-1, 0, 5, MAX_TIMESTAMP_NANOS, MAX_TIMESTAMP_NANOS + 1]


def _fill(message: Message, rng: random.Random, depth: int = 0) -> None:
    """Set every Timestamp reachable from ``message`` (0-3 items of repeated fields), with
    values drawn mostly in range and now and then out of it."""
    for field in message.DESCRIPTOR.fields:
        sub = field.message_type
        if sub is None or depth > 4:
            continue
        count = rng.randint(0, 3) if field.is_repeated else 1
        for _ in range(count):
            if field.is_repeated:
                value = getattr(message, field.name).add()
            elif rng.random() < 0.2:
                continue  # left unset
            else:
                value = getattr(message, field.name)
            if sub.full_name == TIMESTAMP:
                bad = rng.random() < 0.15
                value.seconds = rng.choice(SECONDS) if bad else rng.choice(SECONDS[1:5])
                value.nanos = rng.choice(NANOS) if bad else rng.choice(NANOS[1:4])
                if not bad and value.seconds == 0 and value.nanos == 0:
                    value.seconds = 1  # set, so HasField sees it
            else:
                _fill(value, rng, depth + 1)
                if not field.is_repeated:
                    value.SetInParent()


BODY_TYPES: list[Any] = sorted(BODY_KINDS, key=lambda t: str(BODY_KINDS[t]))


@pytest.mark.parametrize("body_type", BODY_TYPES)
def test_the_compiled_check_agrees_with_the_naming_walk(body_type: Any) -> None:
    rng = random.Random(body_type.__name__)
    fields = _fields_to(body_type.DESCRIPTOR, _TIMED, _is_timestamp)
    verdicts = set()
    for _ in range(300):
        body = body_type()
        _fill(body, rng)
        problems = list(_bad_timestamps(body, fields, ()))
        try:
            check_timestamps(body)
        except RuleBroken as exc:
            assert problems and str(exc) == problems[0]
            verdicts.add("refused")
        else:
            assert problems == [], problems
            verdicts.add("passed")
    if fields:  # a type holding instants met both verdicts
        assert verdicts == {"refused", "passed"}, body_type.__name__
    else:
        assert verdicts == {"passed"}
