"""How province notices are named to a person.

Short references people can say and write: ``N-20261127-3``, the third notice this city got
from the province that day (the day the province issued it, in the federation's zone). The
wire seq — a millisecond-clock number near 1.8e12 — stays the key in the store and in
receipts; a person never has to read it out.

Titles in the reader's language for the notices the hub writes itself (a rejection, an
escalation's resolution, a trace request, a reminder of an overdue report): their wire title
is the hub's English text, and what they are about is in their payload
(:func:`notice_titles`)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from google.protobuf.message import DecodeError
from sqlalchemy import Engine, func, select

from city_node.labels import label, reworded
from city_node.store import InboxNotice
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.vocabulary import PeriodKind
from sync.web.i18n import Lang

#: Period kinds by their wire value, as the labels name them.
_PERIODS = {k.pb: k.value for k in PeriodKind}


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def notice_refs(engine: Engine, notices: Sequence[Any], zone: ZoneInfo) -> dict[int, str]:
    """notice seq -> its short reference, for the notices listed (counted over every notice
    of their days in the inbox, not just those shown)."""
    by_day: dict[date, list[int]] = defaultdict(list)
    for n in notices:
        created = n.created_at if n.created_at.tzinfo else n.created_at.replace(tzinfo=UTC)
        by_day[created.astimezone(zone).date()].append(int(n.notice_seq))
    refs: dict[int, str] = {}
    with engine.connect() as conn:
        for day, seqs in by_day.items():
            start, end = _day_bounds(day, zone)
            first = min(seqs)
            before = conn.execute(
                select(func.count()).where(
                    InboxNotice.created_at >= start,
                    InboxNotice.created_at < end,
                    InboxNotice.notice_seq < first,
                )
            ).scalar_one()
            for index, seq in enumerate(sorted(seqs), start=int(before) + 1):
                refs[seq] = f"N-{day:%Y%m%d}-{index}"
    return refs


_REF = re.compile(r"N-([0-9]{8})-([1-9][0-9]{0,5})")


def seq_of_ref(engine: Engine, ref: str, zone: ZoneInfo) -> int | None:
    """The seq of the notice a short reference names (``N-20261127-3``: the third of that
    day in this city's inbox), or None when it names none; ``ValueError`` when ``ref`` is
    not spelled as one."""
    found = _REF.fullmatch(ref.strip())
    if found is None:
        raise ValueError(f"{ref!r} is not a notice reference such as N-20261127-3")
    try:
        day = datetime.strptime(found.group(1), "%Y%m%d").date()
        start, end = _day_bounds(day, zone)  # OverflowError at the ends of the calendar
    except (ValueError, OverflowError):
        raise ValueError(
            f"{ref!r} names no day ({found.group(1)} is not a date YYYYMMDD); a notice "
            "reference reads like N-20261127-3"
        ) from None
    with engine.connect() as conn:
        seqs = conn.execute(
            select(InboxNotice.notice_seq)
            .where(InboxNotice.created_at >= start, InboxNotice.created_at < end)
            .order_by(InboxNotice.notice_seq)
        ).scalars()
        listed = [int(seq) for seq in seqs]
    index = int(found.group(2))
    return listed[index - 1] if index <= len(listed) else None


def _machine_title(notice: pb.Notice, lang: Lang) -> str | None:
    if notice.HasField("rejection"):
        kind = notice.rejection.body_kind
        named = label(lang, f"body_{kind}")
        return (
            label(lang, "title_rejection")
            .replace("KIND", kind if named == f"body_{kind}" else named)
            .replace("SEQ", str(notice.rejection.seq))
        )
    if notice.HasField("escalation_resolution"):
        ticket = notice.escalation_resolution.ticket_id
        return label(lang, "title_escalation_resolution").replace("TICKET", ticket)
    if notice.HasField("trace_request"):
        return label(lang, "title_trace_request").replace("TICKET", notice.trace_request.ticket_id)
    if notice.HasField("report_reminder"):
        about = notice.report_reminder
        kind = about.report_kind
        named = label(lang, f"body_{kind}")
        period = _PERIODS.get(about.period.kind)
        if period is None or named == f"body_{kind}":
            return None  # not a report this city knows: the hub's own title says it
        return (
            label(lang, "title_report_reminder")
            .replace("START", about.period.start)
            .replace("PERIOD", label(lang, period))
            .replace("REPORT", named)
        )
    return None


def notice_titles(notices: Sequence[Any], lang: Lang) -> dict[int, str]:
    """notice seq -> the title to show: the hub's own notices named in ``lang`` from their
    payload, every other notice by the title its author gave."""
    titles: dict[int, str] = {}
    for n in notices:
        title = None
        if n.kind in ("REJECTION", "ESCALATION_RESOLUTION", "TRACE_REQUEST", "REMINDER"):
            try:
                title = _machine_title(pb.Notice.FromString(n.payload), lang)
            except DecodeError:
                title = None  # stored as it came: show the wire title
        titles[int(n.notice_seq)] = title or n.title
    return titles


#: What the node did with a notice by itself (``InboxNotice.handled_note``, written in English
#: by :mod:`city_node.province_notices`), as a Chinese page says it: (pattern, template).
_HANDLED_ZH: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"standard answer (.+) v(\d+) kept as superseded: v(\d+) is current"),
        "统一口径 {0} 第 {1} 版已存为旧版：现行为第 {2} 版",
    ),
    (
        re.compile(r"standard answer (.+) v(\d+) is current; supersedes (.+)"),
        "统一口径 {0} 第 {1} 版为现行版，替代 {2}",
    ),
    (
        re.compile(r"resolution applied to ticket (\S+): returned for the callback"),
        "处理结果已记入工单 {0}：退回待回访",
    ),
    (
        re.compile(
            r"resolution not applied: it answers escalation seq (\d+), which this store never "
            r"sent for ticket (\S+) \(its escalations: seq (.*); a store restored from an older "
            r"copy\?\)"
        ),
        "处理结果未能记入：它答复的是序号 {0} 的升级，本节点从未为工单 {1} 发出该升级"
        "（本工单的升级序号：{2}；节点数据是否已从较早的备份恢复？）",
    ),
    (
        re.compile(
            r"resolution not applied: it answers escalation seq (\d+) as the hub holds it, and "
            r"this store's escalation of ticket (\S+) under that seq is another one \(a store "
            r"restored from an older copy: the ticket's number was given again\)"
        ),
        "处理结果未能记入：它答复的是省公司所存序号 {0} 的升级，本节点该序号下工单 {1} 的升级"
        "是另一次（节点数据已从较早的备份恢复：工单号被再次使用）",
    ),
    (
        re.compile(
            r"resolution recorded on escalation seq (\d+) of ticket (\S+); its latest "
            r"escalation is another one: the ticket is not changed"
        ),
        "处理结果已记入工单 {1} 序号 {0} 的升级；该工单最近一次升级是另一次：工单未改动",
    ),
    (re.compile(r"resolution not applied: (.*)", re.S), "处理结果未能记入：{0}"),
    (re.compile(r"trace answered: ticket (.+) not found"), "调单已答复：未找到工单 {0}"),
    (
        re.compile(
            r"trace answered: ticket (\S+) here is not the escalated ticket the province holds "
            r"\(escalation seq (\d+); a store restored from an older copy gave its number again\)"
        ),
        "调单已答复：本节点的工单 {0} 不是省公司所存升级（序号 {1}）的那张工单"
        "（节点数据已从较早的备份恢复，工单号被再次使用）",
    ),
    (re.compile(r"trace answered automatically \((\d+) steps\)"), "调单已自动答复（{0} 个步骤）"),
    (re.compile(r"not applied: (.*)", re.S), "未能处理：{0}"),
)


def handled_text(note: str | None, lang: Lang) -> str | None:
    """``note`` as a reader in ``lang`` reads it: a Chinese page gets the node's own notes
    in Chinese (what they quote — a key, an error — stays as written)."""
    return reworded(note, lang, _HANDLED_ZH)
