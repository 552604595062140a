"""Consolidation against an independent count, for randomized federations.

Several city stores get random ticket histories worked through the city's own services
(``city_node.tickets``); their statistics, QA and overtime reports are drafted and approved
through ``city_node.reports`` — some corrected after sending (a new revision), some never
sent, one followed by a revision that breaks a rule (quarantined at the hub). The envelopes
are read from the city outboxes and ingested by the hub's ingest service, as the link does.

The hub's figures are then compared with two oracles computed here, not by the hub's code:

- for every figure and KPI: the sum over cities of what each city's **approved latest
  revision** says (read from the city store), with the KPIs of docs/domain.md written out again;
- for the figures whose definition is stable (received by kind / category / channel, repeat
  complaints, surveys reached in all and of complaints): a direct count over the city
  stores' tickets and their history, for the periods every city re-sent after its last
  ticket.

Roster cities that never sent a period are listed as missing, not as zeros.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.message import Message
from sqlalchemy import select

from city_node import reports, tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role, Status
from city_node.services import open_store
from city_node.store import HistoryRow, Report, TicketRow
from city_node.store import create_schema as create_city_schema
from province_hub import consolidation
from province_hub.services import ingest_batch
from province_hub.store import create_schema as create_hub_schema
from sync import outbox
from sync.db import UnitOfWork, make_engine
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.roster import load_roster
from tests import ticket_steps

TZ = "Asia/Shanghai"
ZONE = ZoneInfo(TZ)
START = datetime(2026, 3, 2, tzinfo=ZONE)  # a Monday; March 2026 has 5 Mondays
WEEKS = [date(2026, 3, 2) + timedelta(weeks=i) for i in range(4)]
MONTH = date(2026, 3, 1)
LATER = datetime(2026, 5, 4, 9, 0, tzinfo=ZONE)  # every period above has ended
ROSTER = load_roster()
OP = Actor("op-1", Role.OPERATOR_JUNIOR)
SENIOR = Actor("op-s", Role.OPERATOR_SENIOR)
MANAGER = Actor("mgr-1", Role.MANAGER_HOTLINE)
SURVEYOR = Actor("sv-1", Role.SURVEYOR)
LEADER = Actor("leader-1", Role.LEADER)
CATEGORIES = ["BILL", "NET.BROADBAND", "NET.SIGNAL", "SVC.INSTALL"]
CHANNELS = ["phone", "web", "walk_in"]
COUNTS = (
    "complaints_received",
    "suggestions_received",
    "enquiries_received",
    "handled",
    "closed",
    "closed_in_time",
    "overtime_open",
    "repeat_complaints",
    "escalations_raised",
    "complaints_closed",
)
SATISFACTION = (
    "very_satisfied",
    "satisfied",
    "neutral",
    "dissatisfied",
    "surveyed",
    "unreachable",
    "complaints_surveyed",
)
SLICE = ("complaints", "suggestions", "enquiries", "closed", "closed_in_time", "repeat_complaints")


def _work_tickets(ctx: Any, rng: random.Random, count: int, days: int) -> None:
    """Register ``count`` random tickets within ``days`` of START and work each one."""
    moments = sorted(START + timedelta(minutes=rng.randrange(days * 24 * 60)) for _ in range(count))
    for at in moments:
        tier = rng.choice(["ordinary", "ordinary", "ordinary", "vip"])
        new = tickets.NewTicket(
            rng.choice(["complaint", "complaint", "suggestion", "enquiry", "praise"]),
            rng.choice(CATEGORIES),
            rng.choice(CHANNELS),
            rng.choice(["13800000001", "13800000002", "13800000003", "13800000004"]),
            "n",
            tier,
            "content",
        )
        t = tickets.register(
            ctx, OP, new, at=at, then=Action.HAND_TO_SENIOR if tier == "vip" else None
        )
        worker = SENIOR if tier == "vip" else OP
        done = at + timedelta(hours=rng.randint(1, 24 * 10))
        path = rng.choice(["answer", "close", "close", "open", "escalate"])
        if path == "answer":
            t = ticket_steps.act(ctx, worker, t.id, "answer", at=done)
        elif path == "close":
            ticket_steps.act(
                ctx, worker, t.id, "dispatch", branch="B1", at=at + timedelta(minutes=5)
            )
            ticket_steps.act(ctx, worker, t.id, "branch_return", at=done)
            t = ticket_steps.act(ctx, worker, t.id, "close", at=done + timedelta(minutes=1))
        elif path == "escalate":
            ticket_steps.act(
                ctx, worker, t.id, "escalate_manager", note="r", at=at + timedelta(minutes=3)
            )
            t = ticket_steps.act(ctx, MANAGER, t.id, "escalate_province", note="r", at=done)
        else:
            t = ticket_steps.act(
                ctx, worker, t.id, "dispatch", branch="B2", at=at + timedelta(minutes=5)
            )
        outcome = rng.choice(
            [None, "very_satisfied", "satisfied", "neutral", "dissatisfied", "unreachable"]
        )
        if outcome and t.status in (Status.ANSWERED, Status.CLOSED):
            assert t.closed_at is not None  # answered and closed tickets say when
            ticket_steps.act(
                ctx, SURVEYOR, t.id, "survey", outcome=outcome, at=t.closed_at + timedelta(hours=2)
            )


def _send(ctx: Any, kind: str, period_kind: str, start: date, moment: datetime) -> None:
    view = reports.draft(
        ctx, kind, period_kind, start, by="stat-1" if kind != "qa" else "qa-1", now=moment
    )
    reports.approve(ctx, LEADER, view.id)


def _push(city: Any, hub: Any, after: int) -> int:
    """Ingest every outbox envelope after ``after`` as the link would; the new mark."""
    rows = Outbox(city.engine).pending(after_seq=after, limit=100_000)
    if not rows:
        return after
    envelopes = [pb.Envelope.FromString(row.envelope) for row in rows]
    result = ingest_batch(
        hub, city_code=city.city_code, envelopes=envelopes, tz_name=TZ, max_batch=100_000
    )
    assert result.acked_through_seq == rows[-1][0]
    return result.acked_through_seq


def _latest_approved(ctx: Any, kind: str, period_kind: str, start: date) -> Any:
    """The city's approved latest revision of a period, decoded (None: never sent)."""
    with ctx.engine.connect() as conn:
        row = conn.execute(
            select(Report.payload)
            .where(
                Report.kind == kind,
                Report.period_kind == period_kind,
                Report.period_start == start.isoformat(),
                Report.status == "approved",
            )
            .order_by(Report.revision.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    cls: type[Message] = {
        "statistics": pb.StatisticsReport,
        "qa": pb.QaReport,
        "overtime": pb.OvertimeReport,
    }[kind]
    return cls.FromString(row.payload)


def _rate(numerator: int, denominator: int | None) -> dict[str, Any]:
    return {
        "numerator": numerator,
        "denominator": denominator,
        "rate": numerator / denominator if denominator else None,
    }


def _expected_kpis(c: dict[str, int], s: dict[str, int]) -> dict[str, Any]:
    return {
        "in_time_closure_rate": _rate(c["closed_in_time"], c["closed"]),
        "overtime_open": _rate(c["overtime_open"], None),
        "repeat_complaint_rate": _rate(c["repeat_complaints"], c["complaints_received"]),
        "satisfaction_rate": _rate(s["very_satisfied"] + s["satisfied"], s["surveyed"]),
        # docs/domain.md: surveyed / closed complaints; surveys of complaints only (schema 1.4).
        "survey_coverage": _rate(s["complaints_surveyed"], c["complaints_closed"]),
        "escalation_rate": _rate(c["escalations_raised"], c["complaints_received"]),
    }


def _oracle_from_reports(bodies: dict[str, Any]) -> dict[str, Any]:
    """Expected per-city and province figures: the approved latest revisions, summed."""
    province_counts = Counter({k: 0 for k in COUNTS})
    province_sat = Counter({k: 0 for k in SATISFACTION})
    province_slices: dict[str, dict[str, Counter[str]]] = {
        "category": defaultdict(Counter),
        "channel": defaultdict(Counter),
    }
    cities: dict[str, Any] = {}
    for code, body in bodies.items():
        counts = {k: getattr(body, k) for k in COUNTS}
        sat = {k: getattr(body.satisfaction, k) for k in SATISFACTION}
        slices: dict[str, Any] = {}
        for dim, items in (("category", body.by_category), ("channel", body.by_channel)):
            slices[dim] = {x.key: {f: getattr(x, f) for f in SLICE} for x in items}
            for x in items:
                for f in SLICE:
                    province_slices[dim][x.key][f] += getattr(x, f)
        cities[code] = {
            "revision": body.revision,
            "counts": counts,
            "satisfaction": sat,
            "slices": slices,
            "kpis": _expected_kpis(counts, sat),
        }
        province_counts.update(counts)
        province_sat.update(sat)
    pc, ps = dict(province_counts), dict(province_sat)
    return {
        "cities": cities,
        "province": {
            "counts": pc,
            "satisfaction": ps,
            "slices": {
                dim: {k: {f: v[f] for f in SLICE} for k, v in groups.items()}
                for dim, groups in province_slices.items()
            },
            "kpis": _expected_kpis(pc, ps),
        },
    }


def _as_slices(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {x["key"]: {f: x[f] for f in SLICE} for x in items}


def _assert_matches(actual: dict[str, Any], expected: dict[str, Any], label: str) -> None:
    assert {k: actual[k] for k in COUNTS} == expected["counts"], label
    assert actual["satisfaction"] == expected["satisfaction"], label
    assert _as_slices(actual["by_category"]) == expected["slices"]["category"], label
    assert _as_slices(actual["by_channel"]) == expected["slices"]["channel"], label
    got = {k: v for k, v in actual["kpis"].items() if k != "qa_pass_rate"}
    assert got == expected["kpis"], label


def _direct_count(ctx: Any, start: date, end: date) -> dict[str, Any]:
    """Received by kind / category / channel, repeat complaints and surveys that reached
    the customer (in all, of complaints), counted over the rows."""
    lo = datetime.combine(start, time(0), tzinfo=ZONE)
    hi = datetime.combine(end, time(0), tzinfo=ZONE)
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            select(
                TicketRow.kind,
                TicketRow.category,
                TicketRow.channel,
                TicketRow.is_repeat,
                TicketRow.registered_at,
            )
        ).all()
        surveys = conn.execute(
            select(TicketRow.kind, HistoryRow.outcome, HistoryRow.at)
            .join(TicketRow, TicketRow.id == HistoryRow.ticket_id)
            .where(HistoryRow.action == "survey")
        ).all()
    field = {"complaint": "complaints", "suggestion": "suggestions", "enquiry": "enquiries"}
    out: dict[str, Any] = {
        "received": Counter(),
        "category": defaultdict(Counter),
        "channel": defaultdict(Counter),
        "repeat": 0,
        "surveyed": 0,
        "complaints_surveyed": 0,
    }
    for kind, outcome, at in surveys:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        if lo <= at < hi and outcome != "unreachable":
            out["surveyed"] += 1
            out["complaints_surveyed"] += kind == "complaint"
    for kind, category, channel, repeat, registered in rows:
        registered = registered if registered.tzinfo else registered.replace(tzinfo=UTC)
        if not lo <= registered < hi or kind not in field:
            continue
        out["received"][kind] += 1
        out["category"][category][field[kind]] += 1
        out["channel"][channel][field[kind]] += 1
        if kind == "complaint" and repeat:
            out["repeat"] += 1
            out["category"][category]["repeat_complaints"] += 1
            out["channel"][channel]["repeat_complaints"] += 1
    return out


@pytest.mark.parametrize("seed", [11, 29])
def test_hub_figures_equal_an_independent_count(databases: Any, seed: int) -> None:
    rng = random.Random(seed)
    hub = make_engine(databases("hub"))
    create_hub_schema(hub)
    codes = rng.sample([c.code for c in ROSTER], 3)
    cities = []
    for code in codes:
        engine = make_engine(databases(f"city{code}"))
        create_city_schema(engine)
        open_store(engine, code)
        cities.append(make_context(engine, code, tz_name=TZ))
    marks = dict.fromkeys(codes, 0)
    periods = [("week", w) for w in WEEKS] + [("month", MONTH)]
    never_sent = {(codes[0], "week", WEEKS[1]), (codes[1], "month", MONTH)}
    never_sent.add((rng.choice(codes), "week", rng.choice(WEEKS)))
    try:
        # Phase 1: half the tickets, then every report sent once (except the never-sent).
        for ctx in cities:
            _work_tickets(ctx, rng, rng.randint(12, 20), days=27)
        sent_at = datetime(2026, 4, 2, 9, 0, tzinfo=ZONE)
        for ctx in cities:
            for period_kind, start in periods:
                if (ctx.city_code, period_kind, start) in never_sent:
                    continue
                _send(ctx, "statistics", period_kind, start, sent_at)
            if (ctx.city_code, "month", MONTH) not in never_sent:
                _send(ctx, "qa", "month", MONTH, sent_at)
                _send(ctx, "overtime", "month", MONTH, sent_at)
            marks[ctx.city_code] = _push(ctx, hub, marks[ctx.city_code])
        # Phase 2: more tickets back-dated into the same periods; the month is corrected by
        # every city that sent it, some weeks by chance; revision 1 of the others stays.
        for ctx in cities:
            _work_tickets(ctx, rng, rng.randint(8, 14), days=27)
            for period_kind, start in periods:
                if (ctx.city_code, period_kind, start) in never_sent:
                    continue
                if period_kind == "month" or rng.random() < 0.5:
                    _send(ctx, "statistics", period_kind, start, LATER)
            if (ctx.city_code, "month", MONTH) not in never_sent:
                _send(ctx, "overtime", "month", MONTH, LATER)
        # One city then sends a revision that breaks a rule: quarantined, it must not count.
        bad_city = next(c for c in cities if (c.city_code, "month", MONTH) not in never_sent)
        good = _latest_approved(bad_city, "statistics", "month", MONTH)
        broken = pb.StatisticsReport()
        broken.CopyFrom(good)
        broken.revision = good.revision + 1
        broken.closed_in_time = broken.closed + 1
        with UnitOfWork(bad_city.engine) as uow:
            outbox.append(uow.conn, broken)
            uow.commit()
        for ctx in cities:
            marks[ctx.city_code] = _push(ctx, hub, marks[ctx.city_code])

        quarantined = consolidation.quarantined_records(hub)
        assert [(q["city_code"], q["kind"], q["revision"]) for q in quarantined] == [
            (bad_city.city_code, "statistics_report", good.revision + 1)
        ]
        assert "closed_in_time" in quarantined[0]["reason"]

        for period_kind, start in periods:
            got = consolidation.figures(hub, period_kind=period_kind, start=start, roster=ROSTER)
            label = f"seed {seed} {period_kind} {start}"
            bodies = {}
            for ctx in cities:
                body = _latest_approved(ctx, "statistics", period_kind, start)
                assert (body is None) == ((ctx.city_code, period_kind, start) in never_sent)
                if body is not None:
                    bodies[ctx.city_code] = body
            expected = _oracle_from_reports(bodies)
            by_code = {c["city_code"]: c for c in got["cities"]}
            assert list(by_code) == [c.code for c in ROSTER]
            for code, entry in by_code.items():
                if code not in bodies:
                    assert entry["missing"] is True and entry["revision"] is None, label
                    assert "complaints_received" not in entry, label  # missing, not zero
                    continue
                assert entry["missing"] is False, label
                assert entry["revision"] == expected["cities"][code]["revision"], label
                _assert_matches(entry, expected["cities"][code], f"{label} city {code}")
            _assert_matches(got["province"], expected["province"], f"{label} province")
            assert sorted(got["province"]["cities_missing"]) == sorted(
                c.code for c in ROSTER if c.code not in bodies
            )
            assert got["province"]["cities_reporting"] == len(bodies)

        # The month was re-sent after the last ticket by every city that sent it: its stable
        # figures equal a direct count over the tickets.
        month = consolidation.figures(hub, period_kind="month", start=MONTH, roster=ROSTER)
        by_code = {c["city_code"]: c for c in month["cities"]}
        province_received: Counter[str] = Counter()
        province_category: dict[str, Counter[str]] = defaultdict(Counter)
        province_repeat = 0
        province_surveyed: Counter[str] = Counter()
        for ctx in cities:
            if (ctx.city_code, "month", MONTH) in never_sent:
                continue
            direct = _direct_count(ctx, MONTH, date(2026, 4, 1))
            entry = by_code[ctx.city_code]
            assert entry["complaints_received"] == direct["received"]["complaint"]
            assert entry["suggestions_received"] == direct["received"]["suggestion"]
            assert entry["enquiries_received"] == direct["received"]["enquiry"]
            assert entry["repeat_complaints"] == direct["repeat"]
            assert entry["satisfaction"]["surveyed"] == direct["surveyed"]
            assert entry["satisfaction"]["complaints_surveyed"] == direct["complaints_surveyed"]
            province_surveyed.update(
                surveyed=direct["surveyed"], complaints=direct["complaints_surveyed"]
            )
            for dim, items in (
                ("category", entry["by_category"]),
                ("channel", entry["by_channel"]),
            ):
                got_counts = {
                    x["key"]: {
                        f: x[f]
                        for f in ("complaints", "suggestions", "enquiries", "repeat_complaints")
                        if x[f]
                    }
                    for x in items
                }
                want = {k: dict(v) for k, v in direct[dim].items()}
                assert {k: v for k, v in got_counts.items() if v} == want
            province_received.update(direct["received"])
            province_repeat += direct["repeat"]
            for k, v in direct["category"].items():
                province_category[k].update(v)
        total = month["province"]
        assert total["complaints_received"] == province_received["complaint"]
        assert total["enquiries_received"] == province_received["enquiry"]
        assert total["repeat_complaints"] == province_repeat
        assert total["satisfaction"]["surveyed"] == province_surveyed["surveyed"]
        coverage = total["kpis"]["survey_coverage"]
        assert coverage["numerator"] == province_surveyed["complaints"]
        assert coverage["denominator"] == total["complaints_closed"]
        # Enquiries and suggestions are surveyed too: they are not in the coverage.
        assert province_surveyed["complaints"] < province_surveyed["surveyed"]
        assert sum(x["complaints"] for x in total["by_category"]) == province_received["complaint"]
        assert total["complaints_received"] > 0  # the federation really had traffic

        # QA and overtime: the latest approved revisions, summed.
        qa = consolidation.qa_picture(hub, period_kind="month", start=MONTH, roster=ROSTER)
        ot = consolidation.overtime_summary(hub, period_kind="month", start=MONTH, roster=ROSTER)
        qa_cities = {c["city_code"]: c for c in qa["cities"]}
        ot_cities = {c["city_code"]: c for c in ot["cities"]}
        total_cases = total_fen = 0
        for ctx in cities:
            qa_body = _latest_approved(ctx, "qa", "month", MONTH)
            ot_body = _latest_approved(ctx, "overtime", "month", MONTH)
            if qa_body is None:
                assert qa_cities[ctx.city_code]["missing"] and ot_cities[ctx.city_code]["missing"]
                continue
            assert qa_cities[ctx.city_code]["pass_rate"] == _rate(qa_body.passed, qa_body.sampled)
            assert ot_cities[ctx.city_code]["revision"] == ot_body.revision == 2
            assert ot_cities[ctx.city_code]["cases"] == len(ot_body.cases)
            branches: Counter[str] = Counter(c.branch for c in ot_body.cases)
            assert {b["branch"]: b["cases"] for b in ot_cities[ctx.city_code]["branches"]} == dict(
                branches
            )
            total_cases += len(ot_body.cases)
            total_fen += ot_body.total_compensation_fen
        assert ot["province"] == {"cases": total_cases, "total_compensation_fen": total_fen}
    finally:
        for ctx in cities:
            ctx.engine.dispose()
        hub.dispose()
