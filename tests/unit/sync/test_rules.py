"""Envelope structure, business rules, periods, config precedence, push encoding, backoff."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from province_hub.settings import HubSettings
from sync import errors
from sync.config import ConfigError, resolve
from sync.envelopes import build_envelope, check_identity, check_structure, digest
from sync.link import backoff_delay, encode_push_request
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import PeriodError, parse_period, period_end, period_start_for
from sync.validation import broken_rule
from sync.version import is_compatible, schema_major

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rule(kind: str, body) -> str | None:
    return broken_rule(kind, body, tz_name="Asia/Shanghai", now=NOW)


def refusal(kind: str, body) -> str:
    """The broken rule's reason; a body that passes fails the test here."""
    reason = rule(kind, body)
    assert reason is not None, f"{kind} passed"
    return reason


def stats(**fields) -> pb.StatisticsReport:
    base: dict[str, Any] = dict(
        period=pb.Period(kind=pb.WEEK, start="2026-11-16"),
        revision=1,
        complaints_received=5,
        closed=4,
        closed_in_time=3,
        complaints_closed=4,
        repeat_complaints=1,
        approved_by="leader",
        satisfaction=pb.SatisfactionCounts(
            very_satisfied=1, satisfied=1, neutral=0, dissatisfied=1, surveyed=3
        ),
    )
    base.update(fields)
    return pb.StatisticsReport(**base)


@pytest.mark.parametrize(
    ("kind", "start", "problem"),
    [
        (pb.DAY, "2026-11-25", None),
        (pb.WEEK, "2026-11-23", None),
        (pb.WEEK, "2026-11-24", "not the first day of a WEEK"),
        (pb.MONTH, "2026-11-02", "not the first day of a MONTH"),
        (pb.QUARTER, "2026-10-01", None),
        (pb.QUARTER, "2026-11-01", "QUARTER"),
        (pb.YEAR, "2026-01-01", None),
        (pb.DAY, "2026-11-26", "in the future"),
        (pb.DAY, "26/11/2026", "not a YYYY-MM-DD date"),
        # Other spellings Python's date parser takes are not the wire's date.
        (pb.DAY, "20261125", "not a YYYY-MM-DD date"),
        (pb.WEEK, "2026-W48-1", "not a YYYY-MM-DD date"),
        (pb.PERIOD_KIND_UNSPECIFIED, "2026-11-25", "not a known period kind"),
    ],
)
def test_periods_are_checked(kind, start, problem):
    reason = rule("statistics_report", stats(period=pb.Period(kind=kind, start=start)))
    if problem is None:
        assert reason is None
    else:
        assert reason is not None and problem in reason
        # The field is named once, at the start ("period.start …", not "period: period.…").
        assert reason.startswith("period.") and reason.count("period.") == 1, reason


def test_period_arithmetic():
    assert period_start_for(pb.WEEK, date(2026, 11, 29)) == date(2026, 11, 23)  # a Sunday
    assert period_end(pb.MONTH, date(2026, 12, 1)) == date(2027, 1, 1)
    assert period_end(pb.QUARTER, date(2026, 10, 1)) == date(2027, 1, 1)
    assert period_end(pb.YEAR, date(2026, 1, 1)) == date(2027, 1, 1)
    with pytest.raises(PeriodError):
        parse_period(pb.Period(kind=pb.MONTH, start="2026-02-30"))


def test_day_is_cut_in_the_federation_zone():
    # 2026-11-25 17:00 UTC is already the 26th in Shanghai: a DAY report for the 26th is not future.
    late = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    body = stats(period=pb.Period(kind=pb.DAY, start="2026-11-26"))
    assert broken_rule("statistics_report", body, tz_name="Asia/Shanghai", now=late) is None
    assert "future" in (broken_rule("statistics_report", body, tz_name="UTC", now=late) or "")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (stats(closed_in_time=5), "closed_in_time (5) exceeds closed (4)"),
        (stats(repeat_complaints=6), "repeat_complaints (6) exceeds complaints_received (5)"),
        (stats(satisfaction=pb.SatisfactionCounts(satisfied=2, surveyed=3)), "surveyed = 3"),
        (
            stats(
                satisfaction=pb.SatisfactionCounts(satisfied=2, surveyed=2, complaints_surveyed=3)
            ),
            "satisfaction.complaints_surveyed (3) exceeds satisfaction.surveyed (2)",
        ),
        (stats(revision=0), "revision must be 1 or more"),
        (stats(approved_by=""), "approved_by is required"),
        (
            stats(by_category=[pb.SliceCounts(key="NET", complaints=4)]),
            "by_category complaints add up to 4",
        ),
        (
            stats(by_channel=[pb.SliceCounts(key="web", complaints=5), pb.SliceCounts(key="web")]),
            "appears twice",
        ),
    ],
)
def test_statistics_rules_name_the_field(body, words):
    reason = rule("statistics_report", body)
    assert reason is not None and words in reason


def test_valid_bodies_pass_and_broken_ones_say_why():
    assert rule("statistics_report", stats()) is None
    qa = pb.QaReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=1,
        sampled=3,
        passed=4,
        inspector="qa",
    )
    assert "passed (4) exceeds sampled (3)" in refusal("qa_report", qa)
    ot = pb.OvertimeReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=1,
        cases=[pb.OvertimeCase(ticket_id="T", compensation_fen=500)],
        total_compensation_fen=400,
    )
    assert "cases add up to 500" in refusal("overtime_report", ot)
    assert "reason" in refusal(
        "notice_receipt", pb.NoticeReceipt(notice_seq=3, action=pb.OBJECTION)
    )
    assert rule("notice_receipt", pb.NoticeReceipt(notice_seq=3, action=pb.DONE, note="ok")) is None
    assert "tier" in refusal(
        "escalation", pb.Escalation(ticket_id="T", kind=pb.COMPLAINT, reason="r")
    )
    assert "batch_date" in refusal(
        "suggestion_batch", pb.SuggestionBatch(batch_date="x", batch_number=1)
    )
    for spelling in ("20261101", "2026-W44-7"):  # the same day, not as the wire writes it
        assert "batch_date" in refusal(
            "suggestion_batch", pb.SuggestionBatch(batch_date=spelling, batch_number=1)
        )


def test_instants_ahead_of_the_day_after_today_are_refused():
    """NOW is 2026-11-25 20:00 in Shanghai; a city's clock may run a day ahead of the hub's."""
    escalation = pb.Escalation(ticket_id="T", kind=pb.COMPLAINT, tier=pb.ORDINARY, reason="r")
    receipt = pb.NoticeReceipt(notice_seq=3, action=pb.READ)
    follow_up = pb.Escalation()
    follow_up.CopyFrom(escalation)
    follow_up.follow_up.status = "closed"
    for body, field in (
        (escalation, escalation.registered_at),
        (receipt, receipt.acted_at),
        (follow_up, follow_up.follow_up.closed_at),
        (follow_up, follow_up.follow_up.surveyed_at),
    ):
        kind = "notice_receipt" if body is receipt else "escalation"
        field.FromDatetime(datetime(2026, 11, 26, 23, 59, tzinfo=UTC))  # the day after: taken
        assert rule(kind, body) is None
        field.FromDatetime(datetime(2100, 1, 1, tzinfo=UTC))
        assert "2100-01-01T00:00:00+00:00 is in the future (today is 2026-11-25)" in refusal(
            kind, body
        )
        field.FromDatetime(datetime(2026, 11, 20, tzinfo=UTC))  # leave it valid


def _qa(sampled: int, passed: int, defects=(), operators=()) -> pb.QaReport:
    return pb.QaReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=1,
        sampled=sampled,
        passed=passed,
        inspector="qa",
        defects=[pb.DefectCount(kind=k, count=n) for k, n in defects],
        operators=[pb.OperatorQa(operator_id=o, sampled=s, passed=p) for o, s, p in operators],
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_qa(10, 10, [(pb.LATE, 5)]), "defects[0].count (5) exceeds the tickets that failed"),
        (
            _qa(10, 5, [(pb.LATE, 3), (pb.LATE, 2)]),
            "defects[1].kind LATE appears twice",
        ),
        (_qa(10, 5, [(pb.LATE, 2), (pb.ATTITUDE, 2)]), "defects add up to 4, but 5 tickets"),
        (
            _qa(2, 2, operators=[("op1", 1, 1), ("op1", 1, 1)]),
            "operators[1].operator_id 'op1' appears twice",
        ),
        (
            _qa(2, 1, [(pb.LATE, 1)], operators=[("op1", 1, 1), ("op2", 1, 1)]),
            "operators[].passed does not add up to passed",
        ),
    ],
)
def test_qa_totals_add_up(body, words):
    assert words in refusal("qa_report", body)


def test_keys_and_phones_are_bounded():
    """Categories, channels and staff ids of 64 characters at most, phones of 32: a city's
    are shorter, and the hub's pages and rankings show them whole."""
    long_key = stats(
        by_category=[pb.SliceCounts(key="K" * 65, complaints=5)],
    )
    assert "by_category[0].key is 65 characters; at most 64" in refusal(
        "statistics_report", long_key
    )
    assert (
        rule("statistics_report", stats(by_category=[pb.SliceCounts(key="K" * 64, complaints=5)]))
        is None
    )
    escalation = pb.Escalation(ticket_id="T", kind=pb.COMPLAINT, tier=pb.ORDINARY, reason="r")
    assert rule("escalation", escalation) is None
    for field, most in (("category", 64), ("channel", 32), ("customer_phone", 32)):
        body = pb.Escalation()
        body.CopyFrom(escalation)
        setattr(body, field, "1" * (most + 1))
        assert f"{field} is {most + 1} characters; at most {most}" in refusal("escalation", body)
    trace = pb.TicketTrace(request_notice_seq=1, ticket_id="T", customer_phone="1" * 10_000)
    assert "customer_phone is 10000 characters; at most 32" in refusal("ticket_trace", trace)
    workload = stats()
    workload.operators.add(operator_id="op-1")
    assert rule("statistics_report", workload) is None
    workload.operators.add(operator_id="X" * 100_000)
    assert "operators[1].operator_id is 100000 characters; at most 64" in refusal(
        "statistics_report", workload
    )
    qa = _qa(1, 1, operators=[("o" * 65, 1, 1)])
    assert "operators[0].operator_id is 65 characters" in refusal("qa_report", qa)


def test_consistent_qa_reports_pass():
    # A failed ticket may have several kinds; kinds need not be listed at all.
    assert rule("qa_report", _qa(10, 7, [(pb.LATE, 3), (pb.ATTITUDE, 2)])) is None
    assert rule("qa_report", _qa(10, 7)) is None
    assert rule("qa_report", _qa(2, 1, [(pb.LATE, 1)], [("a", 1, 1), ("b", 1, 0)])) is None


def test_structure_checks():
    body = pb.SuggestionBatch(batch_date="2026-11-01", batch_number=1)
    env = build_envelope(city_code="620100", epoch="e1", seq=4, body=body)
    kind, body_bytes = check_structure(env, index=0)
    assert kind == "suggestion_batch" and pb.SuggestionBatch.FromString(body_bytes) == body
    assert env.content_digest == digest(body)
    hb = build_envelope(city_code="620100", epoch="e1", seq=0, body=pb.Heartbeat(backlog=3))
    assert check_structure(hb, index=0) == ("heartbeat", b"")
    hb.seq = 2
    with pytest.raises(errors.MalformedEnvelope, match="must have seq 0"):
        check_structure(hb, index=1)
    env.schema_version = "1.7"
    assert check_structure(env, index=0)[0] == "suggestion_batch"  # any minor of major 1
    env.schema_version = "v1"
    with pytest.raises(errors.SchemaUnsupported):
        check_structure(env, index=0)
    with pytest.raises(errors.IdentityMismatch, match="620200"):
        check_identity([env], "620200")


def test_schema_versions():
    assert schema_major("1.0") == 1 and schema_major("12.3") == 12
    assert schema_major("1") is None and schema_major("a.b") is None
    assert is_compatible("1.9") and not is_compatible("2.0")


def test_push_request_encoding_equals_protobuf():
    envs = [
        build_envelope(
            city_code="620100",
            epoch="e",
            seq=i,
            body=pb.SuggestionBatch(
                batch_date="2026-11-01",
                batch_number=i,
                suggestions=[pb.Suggestion(ticket_id="x" * (i * 100), content="y")],
            ),
        )
        for i in range(1, 4)
    ]
    raw = encode_push_request([e.SerializeToString() for e in envs])
    assert pb.PushRequest.FromString(raw) == pb.PushRequest(envelopes=envs)


def test_backoff_grows_and_is_capped_with_jitter():
    delays = [backoff_delay(a, initial=0.5, maximum=30) for a in range(12)]
    assert all(0 < d <= 30 for d in delays)
    assert max(backoff_delay(0, initial=0.5, maximum=30) for _ in range(50)) <= 0.5
    # Full jitter: uniform in [0, cap]; at attempt 10 the cap is the maximum, 30 s.
    late = [backoff_delay(10, initial=0.5, maximum=30) for _ in range(200)]
    assert max(late) > 15 and min(late) < 15
    assert len({round(backoff_delay(5, initial=0.5, maximum=30), 6) for _ in range(20)}) > 1


def test_config_precedence_flag_over_env_over_file(tmp_path: Path):
    config = tmp_path / "fedsync.toml"
    config.write_text('max_batch = 10\n[hub]\nlisten = "0.0.0.0:9000"\ntimezone = "UTC"\n')
    env = {"FEDSYNC_MAX_BATCH": "20", "FEDSYNC_TIMEZONE": "Asia/Urumqi"}
    settings = resolve(
        HubSettings,
        flags={"config": config, "timezone": "Asia/Shanghai"},
        section="hub",
        environ=env,
    )
    assert settings.listen == "0.0.0.0:9000"  # file
    assert settings.max_batch == 20  # env over file
    assert settings.timezone == "Asia/Shanghai"  # flag over env
    with pytest.raises(ConfigError, match="max_batch from FEDSYNC_MAX_BATCH"):
        resolve(HubSettings, flags={}, section="hub", environ={"FEDSYNC_MAX_BATCH": "many"})
    config.write_text("listne = 'x'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        resolve(HubSettings, flags={"config": config}, section="hub", environ={})
    with pytest.raises(ConfigError, match="host:port"):
        resolve(HubSettings, flags={"listen": "7443"}, section="hub", environ={})


def test_a_push_is_capped_in_bytes_but_always_carries_one_envelope():
    from sync.link import _within_bytes

    rows = [(i, b"x" * 100) for i in range(1, 11)]
    assert [seq for seq, _ in _within_bytes(rows, 1_000)] == list(range(1, 10))
    assert [seq for seq, _ in _within_bytes(rows, 10)] == [1]
    assert _within_bytes(rows, 10_000) == rows


def _valid_bodies() -> dict[str, Any]:
    """A body of each sequenced kind that passes, with every repeated field holding an item
    (so that every string the wire carries is present once at least)."""
    history = [pb.HistoryEntry(actor="op1", action="registered", note="called back")]
    escalation = pb.Escalation(
        ticket_id="T1",
        kind=pb.COMPLAINT,
        category="NET.BROADBAND",
        channel="hotline",
        tier=pb.VIP,
        reason="unsolved",
        content="no signal",
        customer_name="Li Lei",
        customer_phone="13800000000",
        history=history,
        follow_up=pb.EscalationFollowUp(status="closed", satisfaction="satisfied"),
    )
    return {
        "statistics_report": stats(
            by_category=[pb.SliceCounts(key="NET", complaints=5)],
            by_channel=[pb.SliceCounts(key="hotline", complaints=5)],
            operators=[pb.OperatorWorkload(operator_id="op1", registered=3)],
        ),
        "qa_report": pb.QaReport(
            period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
            revision=1,
            sampled=2,
            passed=1,
            defects=[pb.DefectCount(kind=pb.LATE, count=1)],
            operators=[pb.OperatorQa(operator_id="op1", sampled=2, passed=1)],
            findings="late callback",
            inspector="qa",
        ),
        "escalation": escalation,
        "suggestion_batch": pb.SuggestionBatch(
            batch_date="2026-11-24",
            batch_number=1,
            classified_by="clerk",
            suggestions=[pb.Suggestion(ticket_id="T2", category="SVC", content="open later")],
        ),
        "overtime_report": pb.OvertimeReport(
            period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
            revision=1,
            cases=[pb.OvertimeCase(ticket_id="T3", category="NET", branch="east")],
        ),
        "notice_receipt": pb.NoticeReceipt(notice_seq=3, action=pb.DONE, note="ok", actor="op1"),
        "ticket_trace": pb.TicketTrace(
            request_notice_seq=4,
            ticket_id="T1",
            found=True,
            status="closed",
            category="NET",
            customer_phone="138****0000",
            customer_name="L*",
            history=history,
        ),
    }


def _string_paths(message, prefix: str = ""):
    """(path, parent message, field name, index or None) of every string ``message`` holds,
    read off its descriptor (the rules' own walk is not used to find them)."""
    for field in message.DESCRIPTOR.fields:
        path = f"{prefix}.{field.name}" if prefix else field.name
        value = getattr(message, field.name)
        repeated = field.is_repeated
        if field.type == field.TYPE_STRING:
            if repeated:
                for i in range(len(value)):
                    yield f"{path}[{i}]", message, field.name, i
            else:
                yield path, message, field.name, None
        elif field.message_type is not None and field.message_type.name != "Timestamp":
            if repeated:
                for i, item in enumerate(value):
                    yield from _string_paths(item, f"{path}[{i}]")
            elif message.HasField(field.name):
                yield from _string_paths(value, path)


@pytest.mark.parametrize("kind", sorted(_valid_bodies()))
@pytest.mark.parametrize("char", ["\x1b", "\x07", "\x0b", "\x7f", "\x85"])
def test_a_control_character_in_any_string_is_refused_naming_the_field(kind, char):
    """Every string of every kind: an escape sequence from a city's body would drive the
    terminal that lists it at the hub, and no spreadsheet cell holds such a character."""
    original = _valid_bodies()[kind]
    assert rule(kind, original) is None
    paths = list(_string_paths(original))
    assert len(paths) >= 2
    for path, _parent, _name, _index in paths:
        body = type(original)()
        body.CopyFrom(original)
        # The same path in the copy: walk it again and change the one string.
        for where, parent, name, index in _string_paths(body):
            if where == path:
                if index is None:
                    setattr(parent, name, getattr(parent, name) + char + "[2J")
                else:
                    getattr(parent, name)[index] += char
        reason = refusal(kind, body)
        assert reason.startswith(path), (path, reason)
        if path not in ("period.start", "batch_date"):  # strict dates: "not a date" first
            assert f"control character (U+{ord(char):04X})" in reason, (path, reason)


def test_tab_newline_and_carriage_return_pass_in_text():
    bodies = _valid_bodies()
    escalation = bodies["escalation"]
    escalation.content = "line one\r\nline two\tend"
    escalation.history[0].note = "a\nb"
    assert rule("escalation", escalation) is None
    qa = bodies["qa_report"]
    qa.findings = "1.\tlate\n2.\trude"
    assert rule("qa_report", qa) is None


def _changed(kind: str, change: Any) -> Any:
    body = _valid_bodies()[kind]
    change(body)
    return body


@pytest.mark.parametrize(
    ("kind", "change", "words"),
    [
        (
            "statistics_report",
            lambda b: setattr(b.by_channel[0], "key", "c" * 33),
            "by_channel[0].key is 33 characters; at most 32",
        ),
        ("statistics_report", lambda b: setattr(b, "approved_by", "l" * 65), "approved_by is 65"),
        ("qa_report", lambda b: setattr(b, "inspector", "q" * 65), "inspector is 65"),
        (
            "suggestion_batch",
            lambda b: setattr(b.suggestions[0], "category", "x" * 132),
            "suggestions[0].category is 132 characters; at most 131",
        ),
        (
            "suggestion_batch",
            lambda b: setattr(b, "classified_by", "c" * 20_001),
            "classified_by is 20001",
        ),
        (
            "overtime_report",
            lambda b: setattr(b.cases[0], "category", "n" * 65),
            "cases[0].category is 65",
        ),
        (
            "overtime_report",
            lambda b: setattr(b.cases[0], "branch", "b" * 20_001),
            "cases[0].branch is 20001",
        ),
        ("notice_receipt", lambda b: setattr(b, "actor", "a" * 65), "actor is 65"),
        # Blank to the eye is no reason.
        (
            "notice_receipt",
            lambda b: b.MergeFrom(pb.NoticeReceipt(action=pb.OBJECTION, note=" \u200b ")),
            "note (the objection's reason) is required",
        ),
    ],
)
def test_every_field_keeps_the_length_its_class_has(kind: str, change: Any, words: str) -> None:
    assert words in refusal(kind, _changed(kind, change))


def test_the_longest_values_a_city_sends_pass() -> None:
    def longest(b: Any) -> None:
        b.suggestions[0].category = f"{'l' * 64} / {'C' * 64}"  # label / code
        b.classified_by = ",".join(["clerk-1", "clerk-2", "x" * 64])  # several clerks

    assert rule("suggestion_batch", _changed("suggestion_batch", longest)) is None
    channel = _changed("statistics_report", lambda b: setattr(b.by_channel[0], "key", "c" * 32))
    assert rule("statistics_report", channel) is None
