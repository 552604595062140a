"""The province's views beyond one period's figures — trends, comparison and rankings,
hot-spots, early warning, suggestions — and the figure tables' migration and CLI, over
reports ingested by the hub's real ingest service (SQLite and PostgreSQL).

The reports here are built by hand (consistent by the rules) so that each expectation is a
number a person can check: the hub must turn them into exactly those figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from alembic import command
from sqlalchemy import Table, func, insert, select, text

from province_hub import consolidation
from province_hub.figures import StatisticsFigures
from province_hub.services import ingest_batch
from province_hub.store import METADATA, MIGRATIONS, Record, create_schema
from sync.db import make_engine, write_connection
from sync.envelopes import build_envelope
from sync.migrate import config
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.roster import load_roster

# SQLAlchemy annotates a declarative class's __table__ as a FromClause; a mapped class's is
# the Table itself, which insert() takes.
RECORDS = cast(Table, Record.__table__)

TZ = "Asia/Shanghai"
ROSTER = load_roster()
A, B, C = (c.code for c in ROSTER[:3])
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
_PERIOD = {
    "day": pb.DAY,
    "week": pb.WEEK,
    "month": pb.MONTH,
    "quarter": pb.QUARTER,
    "year": pb.YEAR,
}


def stats(
    kind: str,
    start: date,
    *,
    revision: int = 1,
    enquiries: dict[str, int] | None = None,
    complaints: dict[str, int] | None = None,
    closed: int = 10,
    in_time: int = 8,
    surveyed: tuple[int, int, int, int] = (3, 4, 2, 1),
) -> pb.StatisticsReport:
    """A statistics report that keeps the rules: slices add up to the totals."""
    enquiries = enquiries or {}
    complaints = complaints or {"BILL": 2}
    keys = sorted(set(enquiries) | set(complaints))
    very, sat, neutral, dis = surveyed
    r = pb.StatisticsReport(
        period=pb.Period(kind=_PERIOD[kind], start=start.isoformat()),
        revision=revision,
        complaints_received=sum(complaints.values()),
        enquiries_received=sum(enquiries.values()),
        closed=closed,
        closed_in_time=in_time,
        complaints_closed=min(closed, sum(complaints.values())),
        repeat_complaints=min(1, sum(complaints.values())),
        escalations_raised=1,
        overtime_open=2,
        handled=closed + 1,
        approved_by="leader-1",
        satisfaction=pb.SatisfactionCounts(
            very_satisfied=very,
            satisfied=sat,
            neutral=neutral,
            dissatisfied=dis,
            surveyed=very + sat + neutral + dis,
        ),
    )
    for key in keys:
        r.by_category.append(
            pb.SliceCounts(
                key=key, complaints=complaints.get(key, 0), enquiries=enquiries.get(key, 0)
            )
        )
    # The one repeat complaint sits on the first category holding a complaint.
    first = next(s for s in r.by_category if s.complaints)
    first.repeat_complaints = r.repeat_complaints
    r.by_channel.append(
        pb.SliceCounts(
            key="phone", complaints=r.complaints_received, enquiries=r.enquiries_received
        )
    )
    return r


class Federation:
    """Per city: its outbox seq, and ingest of bodies through the hub's service."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seq: dict[str, int] = {}

    def send(self, city: str, *bodies: Any) -> Any:
        envelopes = []
        for body in bodies:
            self.seq[city] = self.seq.get(city, 0) + 1
            envelopes.append(
                build_envelope(
                    city_code=city, epoch="e" * 32, seq=self.seq[city], body=body, created_at=NOW
                )
            )
        return ingest_batch(
            self.engine, city_code=city, envelopes=envelopes, tz_name=TZ, max_batch=1000, now=NOW
        )


@pytest.fixture
def hub(databases: Any) -> Any:
    engine = make_engine(databases("views"))
    create_schema(engine)
    yield Federation(engine)
    engine.dispose()


def test_trend_and_comparison_rank_cities_on_summed_counts(hub: Federation) -> None:
    months = [date(2026, m, 1) for m in (8, 9, 10)]
    for i, month in enumerate(months):
        hub.send(A, stats("month", month, closed=10, in_time=5 + i))
        if month != months[1]:  # B misses September
            hub.send(B, stats("month", month, closed=30, in_time=30))
    # A corrects October: the trend follows the latest revision.
    hub.send(A, stats("month", months[2], revision=2, closed=10, in_time=10))
    t = consolidation.trend(
        hub.engine,
        kpi_name="in_time_closure_rate",
        period_kind="month",
        last_start=months[2],
        count=4,
        roster=ROSTER,
        cities=[A, B],
    )
    assert t["periods"] == ["2026-07-01", "2026-08-01", "2026-09-01", "2026-10-01"]
    assert [p["rate"] for p in t["province"]] == [None, 35 / 40, 6 / 10, 40 / 40]
    assert [p["cities_reporting"] for p in t["province"]] == [0, 2, 1, 2]
    assert [None if x is None else x["rate"] for x in t["cities"][A]] == [None, 0.5, 0.6, 1.0]
    assert t["cities"][B][2] is None  # missing, not 0
    # A count KPI of a period nobody reported is missing too, not a count of 0.
    open_overtime = consolidation.trend(
        hub.engine,
        kpi_name="overtime_open",
        period_kind="month",
        last_start=months[2],
        count=4,
        roster=ROSTER,
    )
    assert open_overtime["province"][0]["numerator"] is None
    assert all(p["numerator"] is not None for p in open_overtime["province"][1:])
    # Province rate is summed numerators over summed denominators, not a mean of rates.
    cmp = consolidation.comparison(hub.engine, period_kind="month", start=months[0], roster=ROSTER)
    rows = {r["city_code"]: r for r in cmp["rows"]}
    assert cmp["province"]["kpis"]["in_time_closure_rate"]["rate"] == 35 / 40 != (0.5 + 1.0) / 2
    assert rows[B]["ranks"]["in_time_closure_rate"] == 1
    assert rows[A]["ranks"]["in_time_closure_rate"] == 2
    assert rows[C]["missing"] and rows[C]["ranks"] == {}
    # Equal satisfaction shares rank 1 together; repeat rate: lower is better.
    assert rows[A]["ranks"]["satisfaction_rate"] == rows[B]["ranks"]["satisfaction_rate"] == 1
    with pytest.raises(consolidation.FiguresError) as bad:
        consolidation.trend(
            hub.engine,
            kpi_name="speed",
            period_kind="month",
            last_start=months[2],
            count=3,
            roster=ROSTER,
        )
    assert bad.value.parameter == "kpi"


def test_a_zero_denominator_gives_a_null_rate(hub: Federation) -> None:
    hub.send(A, stats("week", date(2026, 11, 16), closed=0, in_time=0, surveyed=(0, 0, 0, 0)))
    f = consolidation.figures(hub.engine, period_kind="week", start="2026-11-16", roster=ROSTER)
    kpis = f["province"]["kpis"]
    assert kpis["in_time_closure_rate"] == {"numerator": 0, "denominator": 0, "rate": None}
    assert kpis["satisfaction_rate"]["rate"] is None
    assert kpis["qa_pass_rate"] == {"numerator": 0, "denominator": 0, "rate": None}
    assert f["cities"][0]["kpis"]["qa_pass_rate"] is None  # no QA report: not a 0 % pass rate
    assert kpis["overtime_open"]["numerator"] is not None  # a count where a city reported
    # A week nobody reported: its open overtime count is missing, not 0.
    empty = consolidation.figures(hub.engine, period_kind="week", start="2026-11-09", roster=ROSTER)
    assert empty["province"]["cities_reporting"] == 0
    assert empty["province"]["kpis"]["overtime_open"]["numerator"] is None


def test_enquiry_hotspots_and_early_warning_show_their_numbers(hub: Federation) -> None:
    last, this = date(2026, 10, 1), date(2026, 11, 1)
    hub.send(A, stats("month", last, enquiries={"NET.SIGNAL": 4, "BILL": 6}))
    hub.send(A, stats("month", this, enquiries={"NET.SIGNAL": 12, "BILL": 6}))
    hub.send(B, stats("month", last, enquiries={"NET.SIGNAL": 5}))
    hub.send(B, stats("month", this, enquiries={"NET.SIGNAL": 2, "BILL": 2}))
    hub.send(C, stats("month", this, enquiries={"NET.SIGNAL": 9}))  # no October: not compared
    h = consolidation.enquiry_hotspots(hub.engine, period_kind="month", start=this, roster=ROSTER)
    rows = [(r["city_code"], r["category"], r["enquiries"], r["previous"]) for r in h["rows"]]
    assert rows == [(A, "NET.SIGNAL", 12, 4), (B, "BILL", 2, 0)]
    top = h["rows"][0]
    assert top["change_rate"] == 2.0
    assert top["share"] == 12 / 18 and top["province_share"] == 23 / 31
    assert C in h["not_compared"]

    weeks = [date(2026, 9, 7) + timedelta(weeks=i) for i in range(9)]
    for i, week in enumerate(weeks[:-1]):
        hub.send(A, stats("week", week, complaints={"BILL": 3 + i % 2, "NET.SIGNAL": 2}))
        if i % 2 == 0:  # B reports every other week only: 4 weeks of baseline
            hub.send(B, stats("week", week, complaints={"BILL": 4}))
    hub.send(A, stats("week", weeks[-1], complaints={"BILL": 11, "NET.SIGNAL": 3}))
    hub.send(B, stats("week", weeks[-1], complaints={"BILL": 9}))
    w = consolidation.early_warnings(hub.engine, start=weeks[-1], roster=ROSTER)
    flags = {(f["city_code"], f["category"], f["measure"]): f for f in w["flags"]}
    assert set(flags) == {(A, "BILL", "complaints"), (B, "BILL", "complaints")}
    a = flags[(A, "BILL", "complaints")]
    assert a["count"] == 11 and a["baseline_mean"] == 3.5 and len(a["baseline"]) == 8
    assert a["threshold"] == 8.5
    assert flags[(B, "BILL", "complaints")]["baseline"] == {
        weeks[i].isoformat(): 4 for i in (0, 2, 4, 6)
    }


def test_suggestions_are_browsable_by_city_category_and_date(hub: Federation) -> None:
    def batch(day: str, *cats: str) -> pb.SuggestionBatch:
        return pb.SuggestionBatch(
            batch_date=day,
            batch_number=1,
            classified_by="clerk",
            suggestions=[
                pb.Suggestion(ticket_id=str(i), category=c, content=f"idea {i}")
                for i, c in enumerate(cats)
            ],
        )

    # A city sends the clerk's class and the ticket's category code (city_node.suggestions).
    hub.send(
        A, batch("2026-11-20", "装机 / SVC.INSTALL", "资费 / BILL"), batch("2026-11-21", "BILL")
    )
    hub.send(B, batch("2026-11-21", "周末装机 / SVC.INSTALL.WEEKEND"))
    found = consolidation.suggestion_batches(hub.engine, category="SVC.INSTALL")
    assert [(b["city_code"], b["batch_date"]) for b in found] == [
        (B, "2026-11-21"),
        (A, "2026-11-20"),
    ]
    assert [(s["category"], s["category_code"]) for s in found[1]["suggestions"]] == [
        ("装机 / SVC.INSTALL", "SVC.INSTALL")
    ]
    assert len(consolidation.suggestion_batches(hub.engine, category="SVC")) == 2
    # As a person types it: the case of a code does not matter, a part of a code is no match.
    assert [
        b["city_code"] for b in consolidation.suggestion_batches(hub.engine, category="svc.Install")
    ] == [B, A]
    assert consolidation.suggestion_batches(hub.engine, category="SVC.INST") == []
    assert (
        consolidation.suggestion_batches(hub.engine, category="SVC.INSTALL.WEEKEND")[0]["city_code"]
        == B
    )
    by_day = consolidation.suggestion_batches(
        hub.engine, city_code=A, date_from=date(2026, 11, 21), date_to=date(2026, 11, 21)
    )
    assert [b["batch_date"] for b in by_day] == ["2026-11-21"]


def test_a_phone_in_a_suggestion_is_masked_at_the_hub_for_every_reader(hub: Federation) -> None:
    """A city before the label rule sent a clerk's class naming the customer's phone: the
    hub keeps the batch as sent and shows the number masked, in the class and the text."""
    hub.send(
        A,
        pb.SuggestionBatch(
            batch_date="2026-11-22",
            batch_number=1,
            classified_by="clerk",
            suggestions=[
                pb.Suggestion(
                    ticket_id="7",
                    category="账单 15899990000 / BILL",
                    content="回电 0086-158-9999-0000",
                )
            ],
        ),
    )
    (batch,) = consolidation.suggestion_batches(hub.engine, city_code=A)
    (shown,) = batch["suggestions"]
    assert (shown["category"], shown["category_code"]) == ("账单 158****0000 / BILL", "BILL")
    assert shown["content"] == "回电 0086-158****0000"


def test_a_phone_in_a_qa_finding_is_masked_at_the_hub(hub: Federation) -> None:
    """A city before the findings rule sent an inspector's finding quoting a customer's
    number: the QA picture shows it masked."""
    hub.send(
        A,
        pb.QaReport(
            period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
            revision=1,
            sampled=1,
            passed=1,
            mean_score_centi=9000,
            findings="ticket 9 (op-1): 客户要求回拨 139 1111 2222",
            inspector="qa-1",
        ),
    )
    picture = consolidation.qa_picture(
        hub.engine, period_kind="month", start="2026-10-01", roster=ROSTER
    )
    (city,) = [c for c in picture["cities"] if c["city_code"] == A]
    assert city["findings"] == "ticket 9 (op-1): 客户要求回拨 139****2222"


def test_a_batch_number_sent_again_with_other_content_is_one_batch(hub: Federation) -> None:
    """A city restored from an older copy numbers its next batch as one the hub holds (the
    store forgot it sent it) and sends the tickets it classified again: one batch, each
    ticket once as the latest copy classed it, and a ticket only the first copy had kept."""

    def batch(number: int, *items: tuple[str, str]) -> pb.SuggestionBatch:
        return pb.SuggestionBatch(
            batch_date="2026-11-20",
            batch_number=number,
            classified_by="clerk",
            suggestions=[
                pb.Suggestion(ticket_id=t, category=c, content=f"idea {t}") for t, c in items
            ],
        )

    first = batch(2, ("7", "资费 / BILL"), ("8", "装机 / SVC.INSTALL"), ("9", "资费 / BILL"))
    hub.send(A, batch(1, ("5", "资费 / BILL")), first)
    again = batch(2, ("7", "装机 / SVC.INSTALL"), ("8", "装机 / SVC.INSTALL"))
    result = hub.send(A, again)
    assert result.accepted == 1  # kept: the city's latest word on tickets 7 and 8
    listed = consolidation.suggestion_batches(hub.engine, city_code=A)
    assert [(b["batch_number"], b["seq"], b["earlier_seqs"]) for b in listed] == [
        (2, 3, [2]),
        (1, 1, []),
    ]
    assert [(s["ticket_id"], s["category_code"]) for s in listed[0]["suggestions"]] == [
        ("7", "SVC.INSTALL"),
        ("8", "SVC.INSTALL"),
        ("9", "BILL"),
    ]
    # Filters and pages count the batch once, its suggestions as the latest copy classed them.
    bill = consolidation.suggestion_batches(hub.engine, category="BILL")
    assert [(b["batch_number"], [s["ticket_id"] for s in b["suggestions"]]) for b in bill] == [
        (2, ["9"]),
        (1, ["5"]),
    ]
    second = consolidation.suggestion_batches(hub.engine, city_code=A, limit=1, offset=1)
    assert [b["batch_number"] for b in second] == [1]
    assert (
        consolidation.suggestion_batches(hub.engine, category="BILL", limit=1, offset=1)[0][
            "batch_number"
        ]
        == 1
    )


def test_a_restored_citys_batches_show_each_suggestion_once(hub: Federation) -> None:
    """A suggestion is its ticket as registered: a restored store gives a lost ticket's
    number to a new ticket (both suggestions are shown), and sends again in a later batch a
    suggestion the lost copy had sent (shown there alone, not in the old number too)."""

    def suggestion(ticket: str, hour: int, words: str) -> pb.Suggestion:
        item = pb.Suggestion(ticket_id=ticket, category="资费 / BILL", content=words)
        item.received_at.FromDatetime(datetime(2026, 11, 20, hour, tzinfo=UTC))
        return item

    def batch(number: int, *items: pb.Suggestion) -> pb.SuggestionBatch:
        return pb.SuggestionBatch(
            batch_date="2026-11-20", batch_number=number, classified_by="clerk", suggestions=items
        )

    # The lost store sent #3 with ticket 1107 and #5 with ticket 1125 (customer A).
    hub.send(A, batch(3, suggestion("1107", 1, "more towers")))
    hub.send(A, batch(5, suggestion("1125", 2, "suggestion A")))
    # The restored store numbers its batches again: #3 holds a new ticket, 1107 (unsent in
    # the copy) goes in #4, and #5 holds a new customer's ticket under the number 1125.
    hub.send(A, batch(3, suggestion("1124", 5, "longer hours")))
    hub.send(A, batch(4, suggestion("1107", 1, "more towers")))
    hub.send(A, batch(5, suggestion("1125", 6, "suggestion B")))
    listed = consolidation.suggestion_batches(hub.engine, city_code=A)
    shown = {b["batch_number"]: [s["content"] for s in b["suggestions"]] for b in listed}
    assert shown == {
        5: ["suggestion B", "suggestion A"],
        4: ["more towers"],
        3: ["longer hours"],
    }
    everything = [s for b in listed for s in b["suggestions"]]
    assert len(everything) == 4


def test_bad_periods_are_refused_naming_the_parameter() -> None:
    for kind, start, parameter in (
        ("fortnight", "2026-11-01", "period"),
        ("month", "2026-11-02", "start"),
        ("week", "2026-13-01", "start"),
    ):
        with pytest.raises(consolidation.FiguresError) as exc:
            consolidation.period_ref(kind, start)
        assert exc.value.parameter == parameter


def test_a_store_with_records_from_before_the_figures_gets_them(databases: Any) -> None:
    """Records ingested before h0002 get their figures from the migration's back-fill, the
    same as a store that landed them at ingest; quarantined records none."""
    reference = Federation(make_engine(databases("ref")))
    create_schema(reference.engine)
    bodies = [
        stats("month", date(2026, 10, 1), closed=10, in_time=7),
        stats("month", date(2026, 10, 1), revision=2, closed=12, in_time=11),
        pb.QaReport(
            period=pb.Period(kind=pb.MONTH, start="2026-10-01"),
            revision=1,
            sampled=5,
            passed=4,
            mean_score_centi=9000,
            inspector="qa-1",
            defects=[pb.DefectCount(kind=pb.LATE, count=1)],
        ),
        stats("month", date(2026, 10, 1), revision=3, closed=1, in_time=2),  # quarantined
    ]
    result = reference.send(A, *bodies)
    assert result.quarantined == 1
    legacy = make_engine(databases("legacy"))
    with write_connection(legacy) as conn, conn.begin():
        command.upgrade(config(MIGRATIONS, METADATA, conn), "h0001")
    with reference.engine.connect() as src, write_connection(legacy) as dst, dst.begin():
        rows = [dict(r._mapping) for r in src.execute(select(Record.__table__))]
        dst.execute(insert(RECORDS), rows)
    create_schema(legacy)  # runs h0002: tables and back-fill
    for engine in (reference.engine, legacy):
        with engine.connect() as conn:
            assert conn.execute(
                select(StatisticsFigures.revision).order_by(StatisticsFigures.revision)
            ).scalars().all() == [1, 2]
    want = consolidation.figures(
        reference.engine, period_kind="month", start="2026-10-01", roster=ROSTER
    )
    got = consolidation.figures(legacy, period_kind="month", start="2026-10-01", roster=ROSTER)
    assert got == want
    assert got["cities"][0]["closed"] == 12 and got["cities"][0]["revision"] == 2
    assert got["province"]["kpis"]["qa_pass_rate"]["rate"] == 0.8
    assert consolidation.qa_picture(legacy, period_kind="month", start="2026-10-01", roster=ROSTER)[
        "cities"
    ][0]["defects"] == {"late": 1}
    reference.engine.dispose()
    legacy.dispose()


def _fedsync(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sync.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_hub_figures_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    engine = make_engine(url)
    create_schema(engine)
    Federation(engine).send(A, stats("quarter", date(2026, 7, 1), closed=4, in_time=3))
    engine.dispose()
    out = _fedsync(
        "hub",
        "figures",
        "--period",
        "quarter",
        "--start",
        "2026-07-01",
        "--json",
        "--database-url",
        url,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["period"] == {"kind": "quarter", "start": "2026-07-01", "end": "2026-10-01"}
    assert len(data["cities"]) == len(ROSTER)
    first = data["cities"][0]
    assert first["revision"] == 1 and first["closed_in_time"] == 3
    assert first["satisfaction"]["surveyed"] == 10
    assert first["by_category"][0]["key"] == "BILL"
    assert first["kpis"]["in_time_closure_rate"] == {"numerator": 3, "denominator": 4, "rate": 0.75}
    assert data["cities"][1] == {**data["cities"][1], "missing": True, "revision": None}
    # Q3 reports were due by the 5th working day of October; the one sent now came late.
    assert data["province"]["kpis"]["report_timeliness"] == {
        "numerator": 0,
        "denominator": 2 * len(ROSTER),
        "rate": 0.0,
    }
    assert data["cities"][1]["kpis"]["report_timeliness"]["denominator"] == 2
    text = _fedsync(
        "hub", "figures", "--period", "quarter", "--start", "2026-07-01", "--database-url", url
    )
    assert text.returncode == 0 and "75.0%" in text.stdout and "missing" in text.stdout
    # A start outside the report years is refused as the API refuses it (422 there).
    bad_values = [("--period", "fortnight"), ("--start", "2026-07-02")]
    bad_values += [("--start", "1999-10-01"), ("--start", "2101-01-01")]
    for flag, value in bad_values:
        args = {"--period": "quarter", "--start": "2026-07-01", flag: value}
        bad = _fedsync(
            "hub", "figures", *[x for kv in args.items() for x in kv], "--database-url", url
        )
        assert bad.returncode == 2 and flag in bad.stderr and value in bad.stderr


def test_report_browser_lists_every_revision_with_what_changed(hub: Federation) -> None:
    month = date(2026, 10, 1)
    hub.send(A, stats("month", month, closed=10, in_time=7, enquiries={"BILL": 3}))
    hub.send(A, stats("month", month, revision=2, closed=12, in_time=7, enquiries={"BILL": 5}))
    hub.send(A, stats("month", month, revision=3, closed=1, in_time=2))  # quarantined
    hub.send(B, stats("month", month, closed=99, in_time=1))
    got = consolidation.revisions(hub.engine, city_code=A, period_kind="month", start=month)
    assert [r["revision"] for r in got["revisions"]] == [1, 2]
    first, second = got["revisions"]
    assert first["changes"] == {}
    # complaints_closed (2) and closed_in_time (7) did not change, so they are not listed.
    assert second["changes"] == {
        "closed": [10, 12],
        "handled": [11, 13],
        "enquiries_received": [3, 5],
        "category:BILL.enquiries": [3, 5],
        "channel:phone.enquiries": [3, 5],
    }
    assert second["kpis"]["in_time_closure_rate"]["rate"] == 7 / 12
    assert second == {**second, "closed": 12, "approved_by": "leader-1"}


def test_h0007_moves_the_slices_of_landed_headers_into_their_body(databases: Any) -> None:
    """A store at h0004 holds statistics headers without ``body`` (their slices were rows);
    h0007 gives each header its record's bytes, so figures, slices, operators and the report
    browser read the same as on a store that landed them at ingest."""
    reference = Federation(make_engine(databases("ref7")))
    create_schema(reference.engine)
    first = stats("month", date(2026, 10, 1), enquiries={"NET": 4, "BILL": 1})
    reference.send(A, first, stats("month", date(2026, 10, 1), revision=2, closed=12, in_time=11))
    body = stats("month", date(2026, 10, 1), complaints={"NET": 3, "BILL": 1})
    body.operators.append(pb.OperatorWorkload(operator_id="op-1", registered=3, closed=2))
    reference.send(B, body)
    legacy = make_engine(databases("legacy7"))
    with write_connection(legacy) as conn, conn.begin():
        command.upgrade(config(MIGRATIONS, METADATA, conn), "h0004")
    table = StatisticsFigures.__table__
    with reference.engine.connect() as src, write_connection(legacy) as dst, dst.begin():
        records = [dict(r._mapping) for r in src.execute(select(Record.__table__))]
        dst.execute(insert(RECORDS), records)
        later = {"body", "complaints_surveyed"}  # added by h0007, h0010
        heads = [
            {k: v for k, v in r._mapping.items() if k not in later}
            for r in src.execute(select(table))
        ]
        # As ingest before h0007 landed them: headers without body.
        columns = ", ".join(heads[0])
        marks = ", ".join(f":{k}" for k in heads[0])
        dst.execute(text(f"INSERT INTO fig_statistics ({columns}) VALUES ({marks})"), heads)
    create_schema(legacy)  # runs h0007 (and whatever follows it)
    with legacy.connect() as conn:
        assert conn.execute(select(func.count()).select_from(table)).scalar() == 3
    want = consolidation.figures(
        reference.engine, period_kind="month", start="2026-10-01", roster=ROSTER
    )
    got = consolidation.figures(legacy, period_kind="month", start="2026-10-01", roster=ROSTER)
    assert got == want
    assert {s["key"]: s["complaints"] for s in got["province"]["by_category"]} == {
        "BILL": 3,
        "NET": 3,
    }
    assert consolidation.operators(
        legacy, period_kind="month", start="2026-10-01", city_code=B
    ) == [{"operator_id": "op-1", "registered": 3, "closed": 2}]
    rev = consolidation.revisions(legacy, city_code=A, period_kind="month", start="2026-10-01")
    assert [r["revision"] for r in rev["revisions"]] == [1, 2]
    assert [s["key"] for s in rev["revisions"][0]["by_category"]] == ["BILL", "NET"]
    reference.engine.dispose()
    legacy.dispose()


def test_a_new_revision_replaces_cached_figures(hub: Federation) -> None:
    """The views cache their reads by the store's figures version: a revision that arrives
    after a view was read shows on the next read, in figures, trend, comparison, the
    slices and timeliness alike; a read with nothing new is the same answer."""
    month = date(2026, 10, 1)

    def read() -> tuple[Any, Any, Any]:
        return (
            consolidation.figures(hub.engine, period_kind="month", start=month, roster=ROSTER),
            consolidation.trend(
                hub.engine,
                kpi_name="in_time_closure_rate",
                period_kind="month",
                last_start=month,
                count=2,
                roster=ROSTER,
                cities=[A],
            ),
            consolidation.comparison(hub.engine, period_kind="month", start=month, roster=ROSTER),
        )

    hub.send(A, stats("month", month, closed=10, in_time=7, enquiries={"NET": 1}))
    figures, trend, compared = read()
    assert figures["cities"][0]["closed"] == 10
    assert trend["cities"][A][-1]["rate"] == 0.7
    assert read() == (figures, trend, compared)
    hub.send(A, stats("month", month, revision=2, closed=10, in_time=9, enquiries={"NET": 6}))
    figures, trend, compared = read()
    assert figures["cities"][0]["revision"] == 2
    assert figures["province"]["kpis"]["in_time_closure_rate"]["rate"] == 0.9
    assert {s["key"]: s["enquiries"] for s in figures["province"]["by_category"]}["NET"] == 6
    assert trend["cities"][A][-1]["rate"] == 0.9
    assert compared["rows"][0]["kpis"]["in_time_closure_rate"]["rate"] == 0.9
    # A city's first report of the period turns it from missing to reporting.
    assert figures["province"]["cities_reporting"] == 1
    hub.send(B, stats("month", month))
    assert (
        consolidation.figures(hub.engine, period_kind="month", start=month, roster=ROSTER)[
            "province"
        ]["cities_reporting"]
        == 2
    )


def test_cached_timeliness_follows_the_deadline_and_new_reports(hub: Federation) -> None:
    """Report timeliness is cached too: a report still owed turns from pending to missing
    when the deadline passes, and to received when it arrives, without a stale answer."""
    from province_hub.consolidation.period_figures import timeliness
    from province_hub.settings import HubSettings

    deadlines = HubSettings().deadlines()
    month = date(2026, 10, 1)
    deadline = deadlines.deadline("month", month)

    def status(now: datetime) -> str:
        rows = timeliness(
            hub.engine,
            deadlines=deadlines,
            period_kind="month",
            start=month,
            roster=ROSTER[:1],
            now=now,
        )["rows"]
        found: str = next(r["status"] for r in rows if r["report"] == "statistics")
        return found

    assert status(deadline - timedelta(hours=1)) == "pending"
    assert status(deadline + timedelta(hours=1)) == "missing"
    hub.send(A, stats("month", month))
    assert status(deadline + timedelta(hours=1)) in ("on_time", "late")


def test_survey_coverage_counts_surveys_of_complaints_only(hub: Federation) -> None:
    """Wire schema 1.4: coverage = complaints_surveyed / complaints_closed. A report from a
    city before 1.4 (no such field) counts its ``surveyed`` there, as that city did."""
    march = date(2026, 3, 1)
    current = stats("month", march, complaints={"BILL": 4}, closed=10)  # surveyed 10 (all kinds)
    current.satisfaction.complaints_surveyed = 3
    older = stats("month", march, complaints={"NET": 4}, closed=10, surveyed=(1, 1, 0, 0))
    assert not older.satisfaction.HasField("complaints_surveyed")
    assert hub.send(A, current).accepted == 1 and hub.send(B, older).accepted == 1
    got = consolidation.figures(hub.engine, period_kind="month", start=march, roster=ROSTER)
    by_code = {c["city_code"]: c for c in got["cities"]}
    assert by_code[A]["satisfaction"]["complaints_surveyed"] == 3
    assert by_code[A]["kpis"]["survey_coverage"] == {"numerator": 3, "denominator": 4, "rate": 0.75}
    assert by_code[B]["satisfaction"]["complaints_surveyed"] == 2
    assert by_code[B]["kpis"]["survey_coverage"]["numerator"] == 2
    province = got["province"]
    assert province["satisfaction"]["surveyed"] == 12
    assert province["kpis"]["survey_coverage"] == {"numerator": 5, "denominator": 8, "rate": 5 / 8}
    # The satisfaction rate still counts surveys of every kind.
    assert province["kpis"]["satisfaction_rate"]["denominator"] == 12

    # More complaints surveyed than customers reached at all: quarantined, nothing counted.
    bad = stats("month", march, revision=2, complaints={"BILL": 4}, closed=10)
    bad.satisfaction.complaints_surveyed = 11
    result = hub.send(A, bad)
    assert result.quarantined == 1
    again = consolidation.figures(hub.engine, period_kind="month", start=march, roster=ROSTER)
    assert again == got
    (held,) = consolidation.quarantined_records(hub.engine)
    assert (
        "satisfaction.complaints_surveyed (11) exceeds satisfaction.surveyed (10)"
        in (held["reason"])
    )


def test_h0010_fills_complaints_surveyed_from_each_body(databases: Any) -> None:
    """A store at h0009 holds statistics headers without ``complaints_surveyed``; h0010 takes
    the count from each header's body where the report carries it (a 1.4 city's report
    landed by an older hub), else the report's ``surveyed``."""
    reference = Federation(make_engine(databases("ref10")))
    create_schema(reference.engine)
    carried = stats("month", date(2026, 10, 1))
    carried.satisfaction.complaints_surveyed = 4
    reference.send(A, carried)
    reference.send(B, stats("month", date(2026, 10, 1), surveyed=(2, 1, 1, 1)))
    legacy = make_engine(databases("legacy10"))
    with write_connection(legacy) as conn, conn.begin():
        command.upgrade(config(MIGRATIONS, METADATA, conn), "h0009")
    table = StatisticsFigures.__table__
    with reference.engine.connect() as src, write_connection(legacy) as dst, dst.begin():
        records = [dict(r._mapping) for r in src.execute(select(Record.__table__))]
        dst.execute(insert(RECORDS), records)
        heads = [
            {k: v for k, v in r._mapping.items() if k != "complaints_surveyed"}
            for r in src.execute(select(table))
        ]
        columns = ", ".join(heads[0])
        marks = ", ".join(f":{k}" for k in heads[0])
        dst.execute(text(f"INSERT INTO fig_statistics ({columns}) VALUES ({marks})"), heads)
    create_schema(legacy)  # runs h0010
    with legacy.connect() as conn:
        held = dict(
            conn.execute(
                select(StatisticsFigures.city_code, StatisticsFigures.complaints_surveyed)
            ).all()
        )
    assert held == {A: 4, B: 5}
    want = consolidation.figures(
        reference.engine, period_kind="month", start="2026-10-01", roster=ROSTER
    )
    got = consolidation.figures(legacy, period_kind="month", start="2026-10-01", roster=ROSTER)
    assert got == want
    reference.engine.dispose()
    legacy.dispose()
