"""How large a Push gets: the sizes of realistic envelopes, and of 5000 of the largest.

Chooses the hub's default message cap (``HubSettings.max_message_mb``). Run from the repository
root: ``python -m benchmarks.message_size [--json]``. Prints one JSON object.

Each body is filled as the busiest real city would fill it, with Chinese text (3 bytes a
character in UTF-8): a month's statistics report of Lanzhou (every category of the packaged
tree, every channel, 300 operators), a QA report (60 operators, every defect kind, a page of
findings), an escalation (a long complaint, 30 history steps with notes), an overtime report
(500 late cases), a day's suggestion batch (200 suggestions), an objection receipt (a page of
reasons). The batch a city can send is 5000 envelopes (``LinkSettings.batch_size``).

How the cap follows: a city cuts each Push to 90% of the cap the hub states at Hello, so the
cap need not hold 5000 of the rare large records (a month's report, a day's suggestions:
465 MiB, a backlog of years); it must hold the largest single record with room to spare, and
5000 of the records that do come by the thousands (escalations) in one call, so a backlog
drains at full speed. 5000 generous escalations measure 30.1 MiB: 32 MiB covers them, half the
former 64 MiB (and the largest single record, a day's 200 suggestions, is 95 KiB). The
project's own city sends less still: it also keeps each Push under its ``max_batch_bytes``
(16 MiB), so such a batch leaves in two calls; the cap is what the hub will hold per call from
any client, and with ``max_calls_per_city`` (4) bounds one city to 128 MiB in flight.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sync.categories import CategoryTree
from sync.envelopes import build_envelope
from sync.link import encode_push_request
from sync.pb.fedsync.v1 import federation_pb2 as pb

BATCH = 5000
_ZH = "客户反映宽带频繁掉线，多次报修未解决，要求尽快上门处理并给予资费减免。"  # 35 chars


def _text(chars: int) -> str:
    return (_ZH * (chars // len(_ZH) + 1))[:chars]


def _stamp(message: Any) -> None:
    message.FromDatetime(datetime(2026, 11, 1, 9, 30, tzinfo=UTC))


def bodies() -> dict[str, Any]:
    codes = [c.code for c in CategoryTree.load()]
    counts = {"complaints": 48_213, "suggestions": 3_120, "enquiries": 91_877, "closed": 47_001}
    report = pb.StatisticsReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=3,
        complaints_received=48_213,
        suggestions_received=3_120,
        enquiries_received=91_877,
        handled=140_000,
        closed=47_001,
        closed_in_time=45_999,
        overtime_open=1_202,
        repeat_complaints=4_411,
        escalations_raised=37,
        complaints_closed=46_000,
        by_category=[
            pb.SliceCounts(key=code, closed_in_time=40_000, repeat_complaints=4_000, **counts)
            for code in codes
        ],
        by_channel=[
            pb.SliceCounts(key=ch, closed_in_time=40_000, repeat_complaints=4_000, **counts)
            for ch in ("phone", "web", "walk_in", "letter", "other")
        ],
        operators=[
            pb.OperatorWorkload(operator_id=f"op-{i:04d}", registered=1_500, closed=1_400)
            for i in range(300)
        ],
        approved_by="leader-620100",
        satisfaction=pb.SatisfactionCounts(
            very_satisfied=20_000,
            satisfied=15_000,
            neutral=3_000,
            dissatisfied=900,
            surveyed=38_900,
        ),
    )
    _stamp(report.approved_at)
    qa = pb.QaReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=1,
        sampled=1_800,
        passed=1_620,  # 60 operators × 27
        mean_score_centi=9_150,
        defects=[
            pb.DefectCount(kind=pb.DefectKind.ValueType(kind), count=40) for kind in range(1, 8)
        ],
        operators=[
            pb.OperatorQa(operator_id=f"op-{i:04d}", sampled=30, passed=27, mean_score_centi=9_000)
            for i in range(60)
        ],
        findings=_text(2_000),
        inspector="qa-620100-01",
    )
    escalation = pb.Escalation(
        ticket_id="T-620100-2026-0123456",
        category="NET.BROADBAND.DROP",
        channel="phone",
        reason=_text(500),
        content=_text(3_000),
        customer_name="张某某",
        customer_phone="13800000000",
        history=[
            pb.HistoryEntry(actor=f"op-{i:04d}", action="chase", note=_text(200)) for i in range(30)
        ],
    )
    _stamp(escalation.registered_at)
    for entry in escalation.history:
        _stamp(entry.at)
    overtime = pb.OvertimeReport(
        period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
        revision=1,
        cases=[
            pb.OvertimeCase(
                ticket_id=f"T-620100-2026-{i:07d}",
                category="NET.BROADBAND.DROP",
                branch="城关区分公司",
                limit_hours=120,
                overdue_hours=30,
                compensation_fen=5_000,
            )
            for i in range(500)
        ],
        total_compensation_fen=500 * 5_000,
    )
    suggestions = pb.SuggestionBatch(
        batch_date="2026-11-01",
        batch_number=1,
        suggestions=[
            pb.Suggestion(ticket_id=f"S-620100-{i:07d}", category="SVC.INSTALL", content=_text(150))
            for i in range(200)
        ],
        classified_by="clerk-620100-01",
    )
    receipt = pb.NoticeReceipt(
        notice_seq=123_456, action=pb.OBJECTION, note=_text(1_000), actor="leader-620100"
    )
    _stamp(receipt.acted_at)
    return {
        "statistics_report": report,
        "qa_report": qa,
        "escalation": escalation,
        "overtime_report": overtime,
        "suggestion_batch": suggestions,
        "notice_receipt": receipt,
    }


def bulk_escalation() -> Any:
    """The largest envelope that comes by the thousands: an escalation (one per ticket sent to
    the province; receipts and traces are smaller). Reports and suggestion batches come a few a
    day, so a backlog of 5000 is mostly these. Sized generously: a 1,000-character complaint,
    a 200-character reason, 12 history steps with 60-character notes."""
    body = pb.Escalation(
        ticket_id="T-620100-2026-0123456",
        category="NET.BROADBAND.DROP",
        channel="phone",
        reason=_text(200),
        content=_text(1_000),
        customer_name="张某某",
        customer_phone="13800000000",
        history=[
            pb.HistoryEntry(actor=f"op-{i:04d}", action="chase", note=_text(60)) for i in range(12)
        ],
    )
    _stamp(body.registered_at)
    for entry in body.history:
        _stamp(entry.at)
    return body


def _bytes(body: Any, epoch: str) -> bytes:
    return build_envelope(
        city_code="620100", epoch=epoch, seq=10_000_000, body=body
    ).SerializeToString()


def measure() -> dict[str, Any]:
    epoch = uuid.uuid4().hex
    sizes = {kind: len(_bytes(body, epoch)) for kind, body in bodies().items()}
    bulk = _bytes(bulk_escalation(), epoch)
    push = encode_push_request([bulk] * BATCH)
    return {
        "largest_envelope_bytes_by_kind": sizes,
        "bulk_envelope_bytes": len(bulk),
        "batch_envelopes": BATCH,
        "batch_bytes": len(push),
        "batch_mib": round(len(push) / 2**20, 2),
    }


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    print(json.dumps(measure()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
