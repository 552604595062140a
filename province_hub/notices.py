"""The province's notices as people send them: compose (announcement, task, unified
standard answer, circulated finding), preview, send, answer an objection. Following them —
per notice what each targeted city did with it, the open tasks across cities and the notice
completion KPI — is the read side, :mod:`province_hub.notice_board`.

One function per thing a person does; the supervisor web (pages and ``/api/v1/notices``)
and ``fedsync hub notice`` call the same ones. Every send and every objection answer writes
its audit row (:mod:`province_hub.audit`) in the transaction that creates the notice.

Refusals::

    NoticeError (ValueError)         a field is missing or wrong; ``field`` names it   422
    NoticeForbidden (PermissionError) the role may not send this kind / answer          403
    NoticeNotFound (LookupError)      no such notice (or city not targeted by it)        404
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, func, select

from province_hub import audit, services
from province_hub.audit import Action
from province_hub.refusals import HubRefusal
from province_hub.staff import HubRole
from province_hub.store import Notice, NoticeDelivery
from sync.db import UnitOfWork
from sync.limits import (
    MAX_NOTICE_TITLE_CHARS,
    MAX_TEXT_CHARS,
    TEXT_CONTROLS,
    UNSEEN,
    blank,
    refuse_characters,
)
from sync.pb.fedsync.v1 import federation_pb2 as pb
from sync.periods import is_iso_date

#: The kinds a person composes (the others are sent by the hub's own use cases), by the name
#: the web, the API and the CLI use.
KINDS: Final[dict[str, int]] = {
    "announcement": pb.ANNOUNCEMENT,
    "task": pb.TASK,
    "standard_answer": pb.STANDARD_ANSWER,
    "finding": pb.FINDING,
}
PRIORITIES: Final[dict[str, int]] = {
    "low": pb.LOW,
    "normal": pb.NORMAL,
    "high": pb.HIGH,
    "urgent": pb.URGENT,
}
FINDING_SOURCES: Final[dict[str, int]] = {
    "qa": pb.FINDING_FROM_QA,
    "supervision": pb.FINDING_FROM_SUPERVISION,
}
_COMPOSERS: Final = frozenset({HubRole.ANNOUNCER, HubRole.ADMIN})
#: Who may send each kind: the announcer (and admin) everything; supervisors circulate the
#: findings of their supervision. The web's role table is built from this one.
SENDERS: Final[dict[str, frozenset[HubRole]]] = {
    "announcement": _COMPOSERS,
    "task": _COMPOSERS,
    # docs/domain.md: the materials manager publishes the unified standard answers (统一口径).
    "standard_answer": _COMPOSERS | {HubRole.MATERIALS_MANAGER},
    "finding": _COMPOSERS | {HubRole.SUPERVISOR},
}
#: Who may answer a city's objection (the answer is a notice of the announcer's).
ANSWERERS: Final = _COMPOSERS
#: Category codes are stored with at most this many characters at the cities.
MAX_CATEGORY_CHARS = 32
#: A version fits the wire's uint32 and the stores' INTEGER.
MAX_VERSION = 2**31 - 1
#: A task due later than this is a typing error (and near the end of what dates can hold).
MAX_DEADLINE_YEAR = 2100


class NoticeError(HubRefusal, ValueError):
    """A draft or an answer that cannot be sent; ``field`` names what to correct."""


class NoticeForbidden(HubRefusal, PermissionError):
    """The role may not do this; the message names who may."""


class NoticeNotFound(HubRefusal, LookupError):
    """No such notice, or it was not sent to that city."""


@dataclass(frozen=True)
class Draft:
    """A notice as a person composes it. ``targets`` empty: every city of the roster."""

    kind: str
    title: str
    body: str = ""
    priority: str = "normal"
    targets: tuple[str, ...] = ()
    #: A task's deadline (aware); ignored for the other kinds.
    deadline: datetime | None = None
    #: Standard answer: its category code, the question, the answer, its version and key
    #: (empty: "<category>/<question>", as the cities file answers that name none).
    category: str = ""
    question: str = ""
    answer: str = ""
    version: int = 0
    key: str = ""
    #: Finding: the city it is about and where it comes from (qa / supervision).
    about_city: str = ""
    source: str = ""


@dataclass(frozen=True)
class Preview:
    """What would be sent: the notice and its targets (all: ``all_cities``)."""

    notice: pb.Notice
    targets: tuple[str, ...]
    all_cities: bool


def may_send(role: HubRole | None, kind: str) -> bool:
    """``role`` None is the hub's shell (``fedsync hub notice``): whoever runs it holds the
    store and the keys already."""
    return role is None or role in SENDERS.get(kind, frozenset())


def sendable_kinds(role: HubRole) -> list[str]:
    return [kind for kind in KINDS if may_send(role, kind)]


def _names(roles: Iterable[HubRole]) -> str:
    return ", ".join(sorted(r.value for r in roles))


def _text(
    field_name: str, value: str, limit: int, *, required: bool = False, one_line: bool = False
) -> str:
    value = value.strip()
    if "\x00" in value:
        # PostgreSQL text cannot hold it, and no notice needs it.
        raise NoticeError("notice.nul", field=field_name)
    # The web's edge refuses these before; the command line reaches here with them.
    refuse_characters(
        value, field_name, NoticeError, allow=frozenset() if one_line else TEXT_CONTROLS
    )
    if required and blank(value):
        raise NoticeError("notice.empty", field=field_name)
    if len(value) > limit:
        raise NoticeError("notice.too_long", field=field_name, length=len(value), maximum=limit)
    return value


#: The fields of a draft that belong to one kind of notice (the deadline has its own rule).
_FIELDS_OF_KIND = {
    "standard_answer": ("category", "question", "answer", "version", "key"),
    "finding": ("about_city", "source"),
}


def build(
    draft: Draft,
    *,
    roster_codes: Sequence[str],
    sender: str,
    now: datetime,
    categories: Container[str] | None = None,
) -> tuple[pb.Notice, tuple[str, ...]]:
    """Check a draft field by field and make the notice and its target list; NoticeError
    names the first wrong field. Nothing is stored. ``categories``: the codes of the hub's
    category tree, which a standard answer's category must be one of (``None``: not
    checked)."""
    kind = KINDS.get(draft.kind)
    if kind is None:
        raise NoticeError("notice.choose", field="kind", value=draft.kind, allowed=", ".join(KINDS))
    priority = PRIORITIES.get(draft.priority)
    if priority is None:
        raise NoticeError(
            "notice.choose", field="priority", value=draft.priority, allowed=", ".join(PRIORITIES)
        )
    notice = pb.Notice(
        kind=kind,  # type: ignore[arg-type]
        priority=priority,  # type: ignore[arg-type]
        title=_text("title", draft.title, MAX_NOTICE_TITLE_CHARS, required=True, one_line=True),
        body=_text("body", draft.body, MAX_TEXT_CHARS),
        sender=sender,
    )
    unknown = sorted(set(draft.targets) - set(roster_codes))
    if unknown:
        raise NoticeError("notice.unknown_cities", field="targets", codes=", ".join(unknown))
    chosen = tuple(dict.fromkeys(draft.targets))
    notice.targets.extend(chosen)
    if draft.kind == "task":
        if draft.deadline is None:
            raise NoticeError("notice.deadline_missing", field="deadline")
        if draft.deadline.tzinfo is None:
            raise NoticeError("notice.deadline_zone", field="deadline")
        if draft.deadline <= now:
            raise NoticeError("notice.deadline_past", field="deadline")
        if draft.deadline.year > MAX_DEADLINE_YEAR:
            raise NoticeError("notice.deadline_far", field="deadline", year=MAX_DEADLINE_YEAR)
        notice.task_deadline.FromDatetime(draft.deadline.astimezone(UTC))
    elif draft.deadline is not None:
        # Said, then dropped without a word, it would read as a deadline the cities never got.
        raise NoticeError("notice.deadline_not_task", field="deadline", kind=draft.kind)
    # So with every other field of one kind given for another (the command line's --question
    # of a notice whose --kind was forgotten): refused, not dropped.
    for owner, fields in _FIELDS_OF_KIND.items():
        if draft.kind == owner:
            continue
        for field in fields:
            value = getattr(draft, field)
            if value if isinstance(value, int) else value.strip():
                raise NoticeError(
                    "notice.field_not_kind", field=field, owner=owner, kind=draft.kind
                )
    if draft.kind == "standard_answer":
        category = _text("category", draft.category, MAX_CATEGORY_CHARS, required=True)
        # The cities file and look the answer up under the province's codes: a typo would
        # reach fourteen centres as a category none of them has.
        if categories is not None and category not in categories:
            raise NoticeError("notice.unknown_category", field="category", code=category)
        question = _text("question", draft.question, MAX_TEXT_CHARS, required=True)
        answer = _text("answer", draft.answer, MAX_TEXT_CHARS, required=True)
        if not 1 <= draft.version <= MAX_VERSION:
            raise NoticeError("notice.version_range", field="version", maximum=MAX_VERSION)
        key = _text("key", draft.key, MAX_NOTICE_TITLE_CHARS) or f"{category}/{question}"
        unseen = UNSEEN.search(key)
        if unseen is not None:
            # "p2-key" and "p2-key\u200b" would be two current answers the cities cannot tell
            # apart.
            raise NoticeError("notice.key_unseen", field="key", code=f"{ord(unseen[0][0]):04X}")
        notice.standard_answer.CopyFrom(
            pb.StandardAnswer(
                topic=question, category=category, answer=answer, key=key, version=draft.version
            )
        )
    elif draft.kind == "finding":
        if draft.about_city not in roster_codes:
            if draft.about_city:
                raise NoticeError(
                    "notice.not_roster_city", field="about_city", city=draft.about_city
                )
            raise NoticeError("notice.about_city_missing", field="about_city")
        source = FINDING_SOURCES.get(draft.source)
        if source is None:
            raise NoticeError(
                "notice.choose",
                field="source",
                value=draft.source,
                allowed=", ".join(FINDING_SOURCES),
            )
        notice.finding.CopyFrom(pb.Finding(city_code=draft.about_city, source=source))  # type: ignore[arg-type]
    if notice.ByteSize() > services.MAX_NOTICE_BYTES:
        raise NoticeError(
            "notice.too_big",
            field="body",
            size=notice.ByteSize(),
            maximum=services.MAX_NOTICE_BYTES,
        )
    targets = chosen or tuple(roster_codes)
    return notice, targets


def _latest_version(conn: Any, key: str) -> int:
    latest = conn.execute(
        select(func.max(Notice.answer_version)).where(
            Notice.kind == "STANDARD_ANSWER", Notice.answer_key == key
        )
    ).scalar()
    return int(latest or 0)


def _check_version(conn: Any, notice: pb.Notice) -> None:
    if not notice.HasField("standard_answer"):
        return
    sa = notice.standard_answer
    latest = _latest_version(conn, sa.key)
    if sa.version <= latest:
        raise NoticeError(
            "notice.version_sent", field="version", latest=latest, key=sa.key, next=latest + 1
        )


def preview(
    engine: Engine,
    draft: Draft,
    *,
    roster_codes: Sequence[str],
    sender: str,
    role: HubRole | None,
    now: datetime | None = None,
    categories: Container[str] | None = None,
) -> Preview:
    """What :func:`send` would send, checked the same way; nothing is stored."""
    _require_sender(role, draft.kind)
    notice, targets = build(
        draft, roster_codes=roster_codes, sender=sender, now=in_utc(now), categories=categories
    )
    with engine.connect() as conn:
        _check_version(conn, notice)
    return Preview(notice, targets, _is_all(targets, roster_codes))


def _is_all(targets: Sequence[str], roster_codes: Sequence[str]) -> bool:
    return len(roster_codes) > 1 and set(targets) >= set(roster_codes)


def board_city(city: str | None, roster_codes: Sequence[str]) -> str | None:
    """The task board's city filter (page, API, export): None for none given; a city not on
    the roster is refused naming ``city``, never taken as no filter."""
    if not city:
        return None
    if city not in roster_codes:
        raise NoticeError("notice.not_roster_city", field="city", city=city)
    return city


def _require_sender(role: HubRole | None, kind: str) -> None:
    if kind not in KINDS:  # a wrong kind is a wrong field, whoever asks
        raise NoticeError("notice.choose", field="kind", value=kind, allowed=", ".join(KINDS))
    if not may_send(role, kind):
        allowed = SENDERS.get(kind)
        who = _names(allowed) if allowed else "nobody"
        raise NoticeForbidden("notice.sent_by", kind=kind, who=who)


def send(
    engine: Engine,
    draft: Draft,
    *,
    roster_codes: Sequence[str],
    actor: str,
    role: HubRole | None,
    address: str,
    confirm_all: bool = False,
    now: datetime | None = None,
    on_sent: Callable[[Iterable[str]], None] | None = None,
    categories: Container[str] | None = None,
) -> pb.Notice:
    """Send a composed notice to its targets, with its audit row, in one transaction.

    A notice to every city needs ``confirm_all`` (the web's second step): one careless
    click must not reach fourteen centres. ``on_sent`` wakes the targets' streams after
    the commit. ``categories``: as for :func:`build`."""
    _require_sender(role, draft.kind)
    moment = in_utc(now)
    notice, targets = build(
        draft, roster_codes=roster_codes, sender=actor, now=moment, categories=categories
    )
    if _is_all(targets, roster_codes) and not confirm_all:
        raise NoticeError("notice.confirm_all", field="confirm_all", count=len(roster_codes))
    with UnitOfWork(engine) as uow:
        _check_version(uow.conn, notice)
        seq = services.create_notice(uow.conn, notice=notice, targets=targets, moment=moment)
        audit.record(
            uow.conn,
            actor=actor,
            role=role.value if role else "",
            action=Action.NOTICE_SENT,
            target=f"notice:{seq}",
            detail=f"kind={draft.kind} priority={draft.priority} targets={len(targets)}",
            address=address,
            at=moment,
        )
        uow.commit()
    if on_sent is not None:
        on_sent(targets)
    return notice


def answer_objection(
    engine: Engine,
    *,
    notice_seq: int,
    city_code: str,
    answer: str,
    actor: str,
    role: HubRole | None,
    address: str,
    now: datetime | None = None,
    on_sent: Callable[[Iterable[str]], None] | None = None,
) -> pb.Notice:
    """Answer a city's objection: a notice to that city only, linked to the one objected
    to (``reply_to_seq``), with its audit row, in one transaction."""
    if role is not None and role not in ANSWERERS:
        raise NoticeForbidden("notice.answered_by", who=_names(ANSWERERS))
    text = _text("answer", answer, MAX_TEXT_CHARS, required=True)
    moment = in_utc(now)
    with UnitOfWork(engine) as uow:
        row = uow.conn.execute(
            select(Notice.title, Notice.priority, NoticeDelivery.objection_at)
            .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
            .where(Notice.seq == notice_seq, NoticeDelivery.city_code == city_code)
        ).first()
        if row is None:
            held = uow.conn.execute(select(Notice.seq).where(Notice.seq == notice_seq)).first()
            if held is None:
                raise NoticeNotFound("notice.not_found", seq=notice_seq)
            # The notice is there; the city named is not one it went to: a wrong field.
            raise NoticeError(
                "notice.not_sent_to", field="city_code", seq=notice_seq, city=city_code
            )
        if row.objection_at is None:
            raise NoticeError(
                "notice.no_objection", field="city_code", city=city_code, seq=notice_seq
            )
        notice = pb.Notice(
            kind=pb.ANNOUNCEMENT,
            priority=pb.Priority.Value(row.priority),
            title=f"Re #{notice_seq}: {row.title}"[:MAX_NOTICE_TITLE_CHARS],
            body=text,
            sender=actor,
            targets=[city_code],
            reply_to_seq=notice_seq,
        )
        seq = services.create_notice(uow.conn, notice=notice, targets=[city_code], moment=moment)
        audit.record(
            uow.conn,
            actor=actor,
            role=role.value if role else "",
            action=Action.OBJECTION_ANSWERED,
            target=f"notice:{seq}",
            detail=f"answers notice:{notice_seq} objection of city {city_code}",
            address=address,
            at=moment,
        )
        uow.commit()
    if on_sent is not None:
        on_sent([city_code])
    return notice


#: The deadlines taken: a day, or a day and a time (seconds and an offset optional; any one
#: separator between them, as ISO's readers take ``T``, ``t``, a space or ``_``), with
#: dashes and colons (``20301231`` would read as a day in one place and as seconds since
#: 1970 in another).
_DEADLINE: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[^\d]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
)


def end_of_day(text: str) -> str:
    """A deadline's text with a day alone (``2026-12-31``) read as a person means it, by the
    end of that day (``2026-12-31T23:59``), not its first minute; any other text as given.
    ``ValueError`` for a text that is not a deadline's shape (:data:`_DEADLINE`)."""
    text = text.strip()
    if not _DEADLINE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a date (YYYY-MM-DD) or a date and time "
            "(YYYY-MM-DDTHH:MM, seconds and an offset such as +08:00 optional)"
        )
    return f"{text}T23:59" if is_iso_date(text) else text


def read_deadline(text: str, zone: Any) -> datetime:
    """A deadline as the web form, the API and the command line take it: an ISO date-time,
    in the hub's ``zone`` unless it names its offset (18:00 is 18:00 in Lanzhou), a day alone
    by its end (:func:`end_of_day`). ``ValueError`` when it is none of these."""
    deadline = datetime.fromisoformat(end_of_day(text))
    return deadline if deadline.tzinfo is not None else deadline.replace(tzinfo=zone)


def draft_from_form(form: Mapping[str, str], targets: Sequence[str], zone: Any) -> Draft:
    """A draft from the web form's text fields (the deadline in the hub's zone, as the
    ``datetime-local`` input gives it); NoticeError names a field that does not parse."""
    deadline: datetime | None = None
    raw_deadline = form.get("deadline", "").strip()
    kind = form.get("kind", "").strip()
    if raw_deadline and kind == "task":
        try:
            deadline = read_deadline(raw_deadline, zone)
        except ValueError:
            raise NoticeError("notice.not_datetime", field="deadline", value=raw_deadline) from None
    raw_version = form.get("version", "").strip()
    version = 0
    if kind == "standard_answer" and raw_version:
        try:
            version = int(raw_version)
        except ValueError:
            raise NoticeError("notice.not_whole", field="version", value=raw_version) from None
    everyone = (form.get("to") or "all") == "all"
    if not everyone and not any(t.strip() for t in targets):
        raise NoticeError("notice.no_targets", field="targets")
    return Draft(
        kind=kind,
        title=form.get("title", ""),
        body=form.get("body", ""),
        priority=form.get("priority") or "normal",
        targets=() if everyone else tuple(t.strip() for t in targets if t.strip()),
        deadline=deadline,
        # The page shows every kind's fields: what was typed under another kind than the one
        # chosen is left behind, as the deadline and the version are.
        **{
            field: form.get(field, "").strip()
            for owner, fields in _FIELDS_OF_KIND.items()
            if owner == kind
            for field in fields
            if field != "version"
        },
        version=version,
    )


def in_utc(now: datetime | None) -> datetime:
    """``now`` (the web passes its zone's time) in UTC: SQLite keeps a timestamp's wall
    clock without its offset, so everything stored or compared here is UTC."""
    return datetime.now(UTC) if now is None else now.astimezone(UTC)
