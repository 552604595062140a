"""The province's notices as people follow them: per notice what each targeted city did
with it (delivered, read, done, objected, overdue), the open tasks across cities and the
notice completion KPI.

The read side of :mod:`province_hub.notices` (which composes, previews, sends and answers);
the supervisor web (pages and ``/api/v1/notices``) calls the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, case, func, select

from province_hub.desk_views import contacts
from province_hub.figures import PERIOD_ZH, REPORT_WORDS, ReportReminder, kpi
from province_hub.notices import FINDING_SOURCES, NoticeNotFound, in_utc
from province_hub.store import Notice, NoticeDelivery
from sync.masking import mask_text
from sync.pb.fedsync.v1 import federation_pb2 as pb


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# docs/domain.md: notice completion = cities done / cities targeted, *by deadline*; a city that
# neither did nor objected by then is overdue (and stays so, done late or not at all).


def _by(moment: datetime | None, deadline: datetime | None) -> bool:
    """Something happened (``moment``), and by the deadline when there is one."""
    moment = _aware(moment)
    return moment is not None and (deadline is None or moment <= deadline)


def _overdue(
    deadline: datetime | None,
    done_at: datetime | None,
    objection_at: datetime | None,
    now: datetime,
) -> bool:
    deadline = _aware(deadline)
    if deadline is None or deadline >= now:
        return False
    return not _by(done_at, deadline) and not _by(objection_at, deadline)


def _by_sql(column: Any) -> Any:
    """SQL of :func:`_by` for a delivery's column against its notice's deadline."""
    return column.is_not(None) & (Notice.task_deadline.is_(None) | (column <= Notice.task_deadline))


def _overdue_sql(moment: datetime) -> Any:
    return (
        Notice.task_deadline.is_not(None)
        & (Notice.task_deadline < moment)
        & ~_by_sql(NoticeDelivery.done_at)
        & ~_by_sql(NoticeDelivery.objection_at)
    )


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def completion_kpi(engine: Engine) -> dict[str, Any]:
    """The notice completion rate of the province: of every (task, targeted city), those the
    city marked done by the task's deadline. Tasks are what the cities must carry out; other
    notices are read."""
    with engine.connect() as conn:
        row = conn.execute(
            select(_count(_by_sql(NoticeDelivery.done_at)), func.count())
            .select_from(NoticeDelivery)
            .join(Notice, Notice.seq == NoticeDelivery.notice_seq)
            .where(Notice.kind == "TASK")
        ).one()
    return kpi(int(row[0] or 0), int(row[1]))


def _completion(kind: str, done: int, targets: int) -> dict[str, Any] | None:
    """A notice's completion KPI: a task's cities done by its deadline / targeted; None for
    other kinds, which the cities read and need not carry out (0 % would read as neglect)."""
    return kpi(done, targets) if kind == "TASK" else None


def _kind_name(stored: str) -> str:
    return stored.lower()


def kind_name(kind: int) -> str:
    """``announcement``, ``task``… for a wire kind (the names the web and API use)."""
    return pb.NoticeKind.Name(kind).lower()  # type: ignore[arg-type]


def priority_name(priority: int) -> str:
    return pb.Priority.Name(priority).lower()  # type: ignore[arg-type]


def count_notices(engine: Engine, *, kind: str | None = None) -> int:
    """How many notices :func:`list_notices` pages through (of ``kind``)."""
    query = select(func.count()).select_from(Notice)
    if kind is not None:
        query = query.where(Notice.kind == kind.upper())
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def list_notices(
    engine: Engine,
    *,
    now: datetime | None = None,
    kind: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Newest first: per notice its targets and how many cities have it delivered, read,
    done or objected to, how many are overdue, and its completion KPI (done / targets)."""
    moment = in_utc(now)
    overdue = _count(_overdue_sql(moment))
    query = (
        select(
            Notice.seq,
            Notice.kind,
            Notice.priority,
            Notice.title,
            Notice.sender,
            Notice.created_at,
            Notice.task_deadline,
            Notice.reply_to_seq,
            func.count(NoticeDelivery.city_code),
            func.count(NoticeDelivery.delivered_at),
            func.count(NoticeDelivery.read_at),
            func.count(NoticeDelivery.done_at),
            func.count(NoticeDelivery.objection_at),
            overdue,
            _count(_by_sql(NoticeDelivery.done_at)),
        )
        .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
        .group_by(Notice.seq)
        .order_by(Notice.seq.desc())
        .limit(max(1, min(limit, 1000)))
        .offset(max(0, offset))
    )
    if kind is not None:
        query = query.where(Notice.kind == kind.upper())
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "seq": int(r[0]),
            "kind": _kind_name(r[1]),
            "priority": r[2].lower(),
            "title": r[3],
            "sender": r[4],
            "created_at": _aware(r[5]),
            "deadline": _aware(r[6]),
            "reply_to_seq": r[7],
            "targets": int(r[8]),
            "delivered": int(r[9]),
            "read": int(r[10]),
            "done": int(r[11]),
            "objections": int(r[12]),
            "overdue": int(r[13] or 0),
            "completion": _completion(r[1], int(r[14] or 0), int(r[8])),
        }
        for r in rows
    ]


@dataclass
class NoticeDetail:
    seq: int
    kind: str
    priority: str
    title: str
    body: str
    sender: str
    created_at: datetime
    deadline: datetime | None
    reply_to_seq: int | None
    detail: dict[str, Any]
    cities: list[dict[str, Any]] = field(default_factory=list)
    completion: dict[str, Any] | None = None  # tasks only
    #: The answers to objections on this notice: seq, city, when, text.
    answers: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "priority": self.priority,
            "title": self.title,
            "body": self.body,
            "sender": self.sender,
            "created_at": self.created_at,
            "deadline": self.deadline,
            "reply_to_seq": self.reply_to_seq,
            "detail": self.detail,
            "cities": self.cities,
            "completion": self.completion,
            "answers": self.answers,
        }


def detail_of(notice: pb.Notice) -> dict[str, Any]:
    if notice.HasField("standard_answer"):
        sa = notice.standard_answer
        return {
            "category": sa.category,
            "question": sa.topic,
            "answer": sa.answer,
            "version": sa.version,
            "key": sa.key,
        }
    if notice.HasField("finding"):
        source = {v: k for k, v in FINDING_SOURCES.items()}.get(notice.finding.source, "")
        return {"about_city": notice.finding.city_code, "source": source}
    return {}


def _shown_body(engine: Engine, notice: pb.Notice, personal: bool) -> str:
    """A notice's body as the reader may see it: an escalation's resolution (the GM hotline's
    words to the city, which may name the customer) with the customer's name and phone, as
    the escalation it answers gave them, and any phone-like number masked unless
    ``personal``; every other kind as its sender wrote it (a hotline's number in a task is
    no customer's)."""
    if personal or not notice.HasField("escalation_resolution"):
        return notice.body
    name = phone = ""
    seq = notice.escalation_resolution.escalation_seq
    if seq and notice.targets:
        key = (notice.targets[0], int(seq))
        name, phone = contacts(engine, [key], personal=True).get(key, ("", ""))
    return mask_text(notice.body, name=name, phone=phone)


def notice_detail(
    engine: Engine, seq: int, *, now: datetime | None = None, personal: bool = False
) -> NoticeDetail:
    """One notice and, for each targeted city, when it was streamed, delivered, read, done
    (with the note) and objected to (with the reason), and whether a task is overdue. An
    escalation's resolution (which may name the customer and their phone) reads masked
    unless ``personal`` (the GM hotline)."""
    moment = in_utc(now)
    with engine.connect() as conn:
        row = conn.execute(select(Notice.__table__).where(Notice.seq == seq)).first()
        if row is None:
            raise NoticeNotFound("notice.not_found", seq=seq)
        deliveries = conn.execute(
            select(NoticeDelivery.__table__)
            .where(NoticeDelivery.notice_seq == seq)
            .order_by(NoticeDelivery.city_code)
        ).all()
        answers = conn.execute(
            select(Notice.seq, Notice.targets, Notice.created_at, Notice.sender, Notice.payload)
            .where(Notice.reply_to_seq == seq)
            .order_by(Notice.seq)
        ).all()
        notice = pb.Notice.FromString(row.payload)
        deadline = _aware(row.task_deadline)
        cities = [
            {
                "city_code": d.city_code,
                "streamed_at": _aware(d.streamed_at),
                "delivered_at": _aware(d.delivered_at),
                "read_at": _aware(d.read_at),
                "done_at": _aware(d.done_at),
                "done_note": _notes(d.done_note),
                "objection_at": _aware(d.objection_at),
                "objection_reason": _notes(d.objection_reason),
                "overdue": _overdue(deadline, d.done_at, d.objection_at, moment),
            }
            for d in deliveries
        ]
    body = _shown_body(engine, notice, personal)
    answered = {a.targets for a in answers}
    for city in cities:
        city["answered"] = city["city_code"] in answered
    done = sum(1 for c in cities if _by(c["done_at"], deadline))
    return NoticeDetail(
        seq=row.seq,
        kind=_kind_name(row.kind),
        priority=row.priority.lower(),
        title=row.title,
        body=body,
        sender=row.sender,
        created_at=_aware(row.created_at) or moment,
        deadline=deadline,
        reply_to_seq=row.reply_to_seq,
        detail=detail_of(notice),
        cities=cities,
        completion=_completion(row.kind, done, len(cities)),
        answers=[
            {
                "seq": int(a.seq),
                "city_code": a.targets,
                "created_at": _aware(a.created_at),
                "sender": a.sender,
                "answer": pb.Notice.FromString(a.payload).body,
            }
            for a in answers
        ],
    )


def _notes(text: str | None) -> str | None:
    """A city's done note or objection reason as the notice pages show it: phone-like
    numbers masked. A city masks them before the receipt leaves it; one before that rule
    did not, and nobody who follows notices calls customers."""
    return mask_text(text) if text else text


def open_tasks(
    engine: Engine, *, now: datetime | None = None, city: str | None = None, limit: int = 2000
) -> list[dict[str, Any]]:
    """The board of open tasks: every (task, city) not yet marked done, earliest deadline
    first, with what the city did so far and whether the deadline has passed."""
    moment = in_utc(now)
    query = (
        select(
            Notice.seq,
            Notice.title,
            Notice.priority,
            Notice.task_deadline,
            NoticeDelivery.city_code,
            NoticeDelivery.delivered_at,
            NoticeDelivery.read_at,
            NoticeDelivery.objection_at,
            NoticeDelivery.objection_reason,
        )
        .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
        .where(Notice.kind == "TASK", NoticeDelivery.done_at.is_(None))
        .order_by(Notice.task_deadline, Notice.seq, NoticeDelivery.city_code)
        .limit(max(1, min(limit, 10_000)))
    )
    if city:
        query = query.where(NoticeDelivery.city_code == city)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "seq": int(r.seq),
            "title": r.title,
            "priority": r.priority.lower(),
            "deadline": _aware(r.task_deadline),
            "city_code": r.city_code,
            "delivered_at": _aware(r.delivered_at),
            "read_at": _aware(r.read_at),
            "objection_at": _aware(r.objection_at),
            "objection_reason": _notes(r.objection_reason),
            "overdue": _overdue(r.task_deadline, None, r.objection_at, moment),
        }
        for r in rows
    ]


# --- titles of the notices the hub writes itself, in Chinese -----------------------------------

#: The hub writes its own notices' titles in English (the wire's); a Chinese page names them
#: from what they are about: a rejection's record, a resolution's or trace's ticket, a
#: reminder's report (its claim row).
_BODY_KINDS_ZH = {
    "statistics_report": "统计报表",
    "qa_report": "质检报告",
    "overtime_report": "超时报告",
    "escalation": "升级投诉",
    "suggestion_batch": "建议批次",
    "notice_receipt": "公告回执",
    "ticket_trace": "工单调阅答复",
}


def titles_zh(engine: Engine, seqs: list[int]) -> dict[int, str]:
    """seq -> a Chinese title for those of ``seqs`` that the hub wrote itself."""
    if not seqs:
        return {}
    out: dict[int, str] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(Notice.seq, Notice.payload).where(
                Notice.seq.in_(seqs),
                Notice.kind.in_(("REJECTION", "ESCALATION_RESOLUTION", "TRACE_REQUEST")),
            )
        ).all()
        reminders = conn.execute(
            select(
                ReportReminder.notice_seq,
                ReportReminder.report_kind,
                ReportReminder.period_kind,
                ReportReminder.period_start,
            ).where(ReportReminder.notice_seq.in_(seqs))
        ).all()
    for seq, payload in rows:
        n = pb.Notice.FromString(payload)
        if n.HasField("rejection"):
            what = _BODY_KINDS_ZH.get(n.rejection.body_kind, n.rejection.body_kind)
            out[int(seq)] = f"{what}（序号 {n.rejection.seq}）被隔离，请更正后重报"
        elif n.HasField("escalation_resolution"):
            out[int(seq)] = f"工单 {n.escalation_resolution.ticket_id} 的升级投诉已处理"
        elif n.HasField("trace_request"):
            out[int(seq)] = f"调阅工单 {n.trace_request.ticket_id}"
    for seq, report, period, start in reminders:
        what = f"{PERIOD_ZH.get(period, period)}{REPORT_WORDS.get(report, (report,))[0]}"
        out[int(seq)] = f"逾期提醒：{start} 起的{what}未报"
    return out
