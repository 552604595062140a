"""A hub store with known figures, hub accounts for every role, and the supervisor web app
over it — shared by the API tests (tests/integration/test_hub_web.py) and the browser test
(tests/browser/test_hub_web.py).

The figures are pushed through the hub's real ingest service (as envelopes a city sends),
with numbers chosen per city so every expectation can be recomputed by hand: see
:func:`expected_complaints`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from province_hub import staff
from province_hub.services import ingest_batch
from province_hub.settings import HubSettings
from province_hub.staff import HubRole
from province_hub.store import create_schema
from province_hub.web.app import create_app
from province_hub.web.context import HubWeb
from sync.envelopes import build_envelope
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.roster import City, load_roster
from sync.web.throttle import LoginThrottle

TZ = "Asia/Shanghai"
ROSTER: tuple[City, ...] = load_roster()
CODES = [c.code for c in ROSTER]
#: "Now" for the web: December 2026, so the latest complete month is November.
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
NOVEMBER = date(2026, 11, 1)
OCTOBER = date(2026, 10, 1)
#: The one roster city that sends no November report (missing, not zero).
SILENT = CODES[-1]
#: The city that corrects its November report with a second revision.
CORRECTED = CODES[0]
PASSWORD = "hub-pass-123"
#: The seq of the one suggestion batch (the first city's 6th record: October, November
#: twice, QA, overtime, then the batch).
BATCH_SEQ = 6
#: One account per hub role, named after it.
ACCOUNTS = {role.value: role for role in HubRole}


def expected_complaints(code: str, month: date) -> int:
    """The complaints a city reports for a month (its latest revision)."""
    base = 10 + CODES.index(code) * 3 + (2 if month == NOVEMBER else 0)
    if code == CORRECTED and month == NOVEMBER:
        return base + 5  # revision 2
    return base


def stats(
    month: date, complaints: int, *, revision: int = 1, enquiries: int = 6
) -> pb.StatisticsReport:
    """A month's statistics report that keeps the rules (slices add up to the totals)."""
    closed = complaints + enquiries
    in_time = closed - complaints % 4
    billing = complaints // 2
    r = pb.StatisticsReport(
        period=pb.Period(kind=pb.MONTH, start=month.isoformat()),
        revision=revision,
        complaints_received=complaints,
        enquiries_received=enquiries,
        suggestions_received=2,
        handled=closed,
        closed=closed,
        closed_in_time=in_time,
        complaints_closed=complaints,
        repeat_complaints=complaints // 5,
        escalations_raised=1,
        overtime_open=complaints % 3,
        approved_by="leader-1",
        satisfaction=pb.SatisfactionCounts(
            very_satisfied=complaints // 2,
            satisfied=complaints // 4,
            neutral=2,
            dissatisfied=1,
            surveyed=complaints // 2 + complaints // 4 + 3,
        ),
    )
    r.by_category.append(
        pb.SliceCounts(key="BILL", complaints=billing, enquiries=enquiries - 2, repeat_complaints=0)
    )
    r.by_category.append(
        pb.SliceCounts(
            key="NET",
            complaints=complaints - billing,
            enquiries=2,
            repeat_complaints=complaints // 5,
        )
    )
    r.by_channel.append(pb.SliceCounts(key="phone", complaints=complaints, enquiries=enquiries))
    return r


@dataclass
class HubStore:
    engine: Engine
    seq: dict[str, int] = field(default_factory=dict)

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


def fill(engine: Engine) -> HubStore:
    """October and November for every city (November missing for :data:`SILENT`, corrected
    by :data:`CORRECTED`), a QA and an overtime report, suggestions, one quarantined record;
    and one account per role."""
    create_schema(engine)
    store = HubStore(engine)
    for code in CODES:
        bodies: list[Any] = [stats(OCTOBER, expected_complaints(code, OCTOBER))]
        if code != SILENT:
            november = expected_complaints(code, NOVEMBER)
            if code == CORRECTED:
                bodies.append(stats(NOVEMBER, november - 5))
                bodies.append(stats(NOVEMBER, november, revision=2))
            else:
                bodies.append(stats(NOVEMBER, november))
        store.send(code, *bodies)
    first, second = CODES[0], CODES[1]
    store.send(
        first,
        pb.QaReport(
            period=pb.Period(kind=pb.MONTH, start=NOVEMBER.isoformat()),
            revision=1,
            sampled=20,
            passed=17,
            mean_score_centi=9150,
            defects=[
                pb.DefectCount(kind=pb.LATE, count=2),
                pb.DefectCount(kind=pb.ATTITUDE, count=1),
            ],
            findings="两张工单超时",
            inspector="qa-1",
        ),
        pb.OvertimeReport(
            period=pb.Period(kind=pb.MONTH, start=NOVEMBER.isoformat()),
            revision=1,
            cases=[
                pb.OvertimeCase(
                    ticket_id="T1",
                    category="NET",
                    branch="城关分公司",
                    limit_hours=48,
                    overdue_hours=5,
                    compensation_fen=5000,
                ),
                pb.OvertimeCase(
                    ticket_id="T2",
                    category="BILL",
                    branch="七里河分公司",
                    limit_hours=48,
                    overdue_hours=30,
                    compensation_fen=12000,
                ),
            ],
            total_compensation_fen=17000,
        ),
        pb.SuggestionBatch(
            batch_date="2026-11-30",
            batch_number=1,
            classified_by="clerk-1",
            suggestions=[pb.Suggestion(ticket_id="S1", category="NET", content="增加夜间营业厅")],
        ),
    )
    assert store.seq[first] == BATCH_SEQ
    # A report whose satisfaction counts do not add up: quarantined with its reason.
    bad = stats(NOVEMBER, 12)
    bad.satisfaction.surveyed += 1
    bad.revision = 3
    store.send(second, bad)
    for name, role in ACCOUNTS.items():
        staff.add_staff(engine, staff_id=name, name=f"{name} 测试", role=role, password=PASSWORD)
    return store


def web_app(
    engine: Engine, *, throttle: LoginThrottle | None = None, real_clock: bool = False
) -> Any:
    """The supervisor web over ``engine``, its clock at :data:`NOW` (or the real one), with
    the hub's default report deadlines."""
    hub = HubWeb(
        engine=engine,
        roster=ROSTER,
        zone=ZoneInfo(TZ),
        now=(lambda zone: datetime.now(zone))
        if real_clock
        else (lambda zone: NOW.astimezone(zone)),
        deadlines=HubSettings().deadlines(),
    )
    return create_app(hub, secret_key=b"h" * 32, throttle=throttle)
