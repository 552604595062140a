"""Quality assurance (质检): sampling closed tickets and scoring them on a weighted scorecard.

Samples are drawn on a schedule (a share of each day's closed tickets, see
:mod:`city_node.scheduler`) or at random by an inspector; a ticket is sampled at most once.
The inspector scores each item 0–100; the weighted mean is the ticket's score. A sample
passes when no defect was found. :func:`city_node.reports.build_qa` turns the period's
scored samples into the QA report.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from city_node import domain
from city_node.context import Actor, CityContext, CityError, Conflict, NotFound, existing_id
from city_node.domain import Action, Status
from city_node.store import QaSample, TicketRow
from sync.db import UnitOfWork
from sync.limits import MAX_STEP_NOTE_CHARS
from sync.masking import mask_text

_T: Table = TicketRow.__table__  # type: ignore[assignment]
_Q: Table = QaSample.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ScoreItem:
    key: str
    en: str
    zh: str
    weight: int  # percent; the weights add up to 100


SCORECARD: tuple[ScoreItem, ...] = (
    ScoreItem("greeting", "Greeting and courtesy", "服务用语与礼貌", 10),
    ScoreItem("understanding", "Understood the problem", "准确理解客户问题", 20),
    ScoreItem("accuracy", "Answer correct and complete", "答复准确完整", 30),
    ScoreItem("record", "Ticket recorded completely", "工单记录完整", 15),
    ScoreItem("timeliness", "Handled within the time limit", "处理及时", 15),
    ScoreItem("follow_up", "Follow-up and callback", "跟踪回访", 10),
)
assert sum(i.weight for i in SCORECARD) == 100

#: Defect kinds an inspector can record (wire names in fedsync.v1.DefectKind).
DEFECT_KINDS: tuple[str, ...] = (
    "late",
    "wrong_answer",
    "incomplete_record",
    "wrong_category",
    "attitude",
    "no_callback",
    "other",
)
_CLOSED = [s.value for s in (Status.ANSWERED, Status.CLOSED, Status.SURVEYED)]


@dataclass(frozen=True)
class QaSampleView:
    id: int
    ticket_id: int
    operator: str
    sampled_at: datetime
    how: str
    inspector: str | None
    scored_at: datetime | None
    score_centi: int | None
    items: dict[str, int]
    defects: list[str]
    finding: str


def _view(row: Any) -> QaSampleView:
    """A sample as the QA worklist shows it. The finding is shown with the ticket's customer
    name and phone and any phone-like number masked: the roles that read QA (inspector,
    leader) never call customers (as the QA report the city sends says it)."""
    return QaSampleView(
        id=row.id,
        ticket_id=row.ticket_id,
        operator=row.operator,
        sampled_at=row.sampled_at,
        how=row.how,
        inspector=row.inspector,
        scored_at=row.scored_at,
        score_centi=row.score_centi,
        items=json.loads(row.items) if row.items else {},
        defects=[d for d in row.defects.split(",") if d],
        finding=mask_text(row.finding, name=row.customer_name, phone=row.customer_phone),
    )


def _samples() -> Any:
    """The samples with their ticket's customer (to mask the finding by)."""
    return select(_Q, _T.c.customer_name, _T.c.customer_phone).join(_T, _T.c.id == _Q.c.ticket_id)


def draw(
    ctx: CityContext,
    *,
    actor: Actor | None = None,
    **options: Any,
) -> list[int]:
    """Sample closed tickets not sampled before; return the new sample ids (see
    :func:`_draw` for the options). Two draws racing for the same ticket: the loser gets
    :class:`~city_node.context.Conflict` and may simply draw again.

    ``actor`` is the inspector drawing a spot check (they must be one; the draw names them);
    None is the node's own schedule."""
    if actor is not None:
        domain.check_may(actor.role, Action.SCORE_QA)
        options["inspector"] = actor.id
    try:
        return _draw(ctx, **options)
    except IntegrityError:
        raise Conflict("qa.draw_race") from None


def _draw(
    ctx: CityContext,
    *,
    day: date | None = None,
    rate: float | None = None,
    count: int | None = None,
    how: str = "scheduled",
    inspector: str | None = None,
    seed: int | None = None,
    now: datetime | None = None,
    guard: Callable[[Connection], bool] | None = None,
) -> list[int]:
    """Sample closed tickets not sampled before; return the new sample ids.

    ``day`` limits the draw to tickets closed that local day (the schedule draws yesterday);
    otherwise any closed ticket. ``guard``, run first in the draw's transaction, may veto it
    (the schedule's once-a-day mark). ``count`` fixes how many, else ``rate`` (default the node's
    ``qa_sample_rate``) of the candidates, at least one when there is any.
    """
    if how not in ("scheduled", "random"):
        raise CityError("qa.how", value=how)
    if count is not None and not 1 <= count <= 1000:
        raise CityError("qa.count", count=count)
    share = ctx.qa_sample_rate if rate is None else rate
    if not 0 < share <= 1:
        raise CityError("qa.rate", rate=share)
    moment = now or ctx.now()
    sampled = select(_Q.c.ticket_id)
    query = select(_T.c.id, _T.c.closed_by, _T.c.operator).where(
        _T.c.status.in_(_CLOSED), _T.c.id.not_in(sampled)
    )
    if day is not None:
        start = datetime.combine(day, time(0), tzinfo=ctx.zone).astimezone(UTC)
        query = query.where(_T.c.closed_at >= start, _T.c.closed_at < start + timedelta(days=1))
    with UnitOfWork(ctx.engine) as uow:
        if guard is not None and not guard(uow.conn):
            return []
        candidates = uow.conn.execute(query.order_by(_T.c.id)).all()
        if not candidates:
            uow.commit()
            return []
        want = count if count is not None else max(1, round(len(candidates) * share))
        chosen = random.Random(seed).sample(candidates, min(want, len(candidates)))
        ids = []
        for ticket_id, closed_by, operator in sorted(chosen):
            ids.append(
                uow.conn.execute(
                    insert(_Q)
                    .values(
                        ticket_id=ticket_id,
                        operator=closed_by or operator or "",
                        sampled_at=moment,
                        how=how,
                        inspector=inspector,
                        defects="",
                        finding="",
                    )
                    .returning(_Q.c.id)
                ).scalar_one()
            )
        uow.commit()
    return ids


def worklist(ctx: CityContext, *, scored: bool = False, limit: int = 50) -> list[QaSampleView]:
    """Samples waiting for a score (or, with ``scored``, the latest scored ones)."""
    cond = _Q.c.scored_at.is_not(None) if scored else _Q.c.scored_at.is_(None)
    order = _Q.c.scored_at.desc() if scored else _Q.c.id
    with ctx.engine.connect() as conn:
        rows = conn.execute(
            _samples().where(cond).order_by(order).limit(max(1, min(limit, 500)))
        ).all()
    return [_view(r) for r in rows]


def get(ctx: CityContext, sample_id: int) -> QaSampleView:
    existing_id(sample_id, "QA sample")
    with ctx.engine.connect() as conn:
        row = conn.execute(_samples().where(_Q.c.id == sample_id)).first()
    if row is None:
        raise NotFound("qa.sample_not_found", sample=sample_id)
    return _view(row)


def weighted_score(items: dict[str, int]) -> int:
    """The scorecard's weighted mean in hundredths of a point (0..10000)."""
    keys = {i.key for i in SCORECARD}
    unknown = sorted(set(items) - keys)
    if unknown:
        raise CityError("qa.unknown_items", items=", ".join(unknown), known=", ".join(sorted(keys)))
    missing = sorted(keys - set(items))
    if missing:
        raise CityError("qa.missing_items", items=", ".join(missing))
    for key, points in items.items():
        if not isinstance(points, int) or not 0 <= points <= 100:
            raise CityError("qa.points", item=key, points=points)
    return sum(items[i.key] * i.weight for i in SCORECARD)


def score(
    ctx: CityContext,
    actor: Actor,
    sample_id: int,
    *,
    items: dict[str, int],
    defects: list[str],
    finding: str = "",
    now: datetime | None = None,
) -> QaSampleView:
    """Record an inspector's scorecard for a sample (once; re-scoring is refused)."""
    domain.check_may(actor.role, Action.SCORE_QA)
    existing_id(sample_id, "QA sample")
    total = weighted_score(items)
    bad = sorted(set(defects) - set(DEFECT_KINDS))
    if bad:
        raise CityError("qa.defects", defects=", ".join(bad), allowed=", ".join(DEFECT_KINDS))
    twice = sorted({d for d in defects if defects.count(d) > 1})
    if twice:
        # Each kind is a yes/no of this ticket: a kind listed twice is a slip, said, not
        # quietly made one (the hub refuses a report listing a kind twice as well).
        raise CityError("qa.defects_twice", defects=", ".join(twice))
    if len(finding) > MAX_STEP_NOTE_CHARS:
        raise CityError(
            "text.too_long", field="finding", length=len(finding), maximum=MAX_STEP_NOTE_CHARS
        )
    with UnitOfWork(ctx.engine) as uow:
        done = uow.conn.execute(
            update(_Q)
            .where(and_(_Q.c.id == sample_id, _Q.c.scored_at.is_(None)))
            .values(
                inspector=actor.id,
                scored_at=now or ctx.now(),
                score_centi=total,
                items=json.dumps(items, sort_keys=True),
                defects=",".join(sorted(set(defects))),
                finding=finding.strip(),
            )
        )
        if done.rowcount != 1:
            exists = uow.conn.execute(select(func.count()).where(_Q.c.id == sample_id)).scalar()
            if not exists:
                raise NotFound("qa.sample_not_found", sample=sample_id)
            raise Conflict("qa.already_scored", sample=sample_id)
        uow.commit()
    return get(ctx, sample_id)
