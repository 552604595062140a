"""The per-city link picture for ``fedsync hub status`` (and the supervisor pages), and how
far each notice has got for ``fedsync hub notices``.

The stored ``state`` says what the last contact was (connected, conflict, revoked,
incompatible); it is never aged by itself, so the picture derives what a person needs:
a city last seen connected but not heard from for ``silent_after`` is **silent since** its
last contact — a hub that stopped, or a city that did, cannot leave "connected" behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, case, func, select

from province_hub.escalations import FOLLOW_UP_SUBJECT
from province_hub.store import CityLink, Notice, NoticeDelivery, Record
from sync.zones import zone_label


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


#: Default for ``silent_after``: three heartbeat intervals of the cities' default 10 s.
SILENT_AFTER = timedelta(seconds=30)


def derived_state(
    stored: str, last_contact: datetime | None, *, now: datetime, silent_after: timedelta
) -> str:
    """connected / silent / never / conflict / revoked / incompatible / behind (the city
    delivered more than the hub holds), as of ``now``."""
    if last_contact is None:
        return "never"
    if last_contact.tzinfo is None:
        last_contact = last_contact.replace(tzinfo=UTC)
    if stored == "connected" and now - last_contact > silent_after:
        return "silent"
    return stored


def link_status(
    engine: Engine,
    roster_codes: Sequence[str],
    *,
    now: datetime | None = None,
    silent_after: timedelta = SILENT_AFTER,
) -> list[dict[str, Any]]:
    """One entry per roster city (and any other city the hub has heard from)."""
    moment = now or datetime.now(UTC)
    with engine.connect() as conn:
        links = {row.city_code: row for row in conn.execute(select(CityLink)).all()}
        counts: dict[str, dict[str, int]] = {}
        accepted: dict[str, dict[str, int]] = {}
        quarantined: dict[str, int] = {}
        # A city's follow-up on a resolved escalation travels as an Escalation record; it is
        # counted apart, so "escalations" counts complaints the city escalated.
        kind_of = case(
            (Record.subject.like(f"{FOLLOW_UP_SUBJECT}%"), "escalation_follow_up"),
            else_=Record.kind,
        )
        for code, kind, status, n in conn.execute(
            select(Record.city_code, kind_of, Record.status, func.count()).group_by(
                Record.city_code, kind_of, Record.status
            )
        ).all():
            by_kind = counts.setdefault(code, {})
            by_kind[kind] = by_kind.get(kind, 0) + n
            if status == "quarantined":
                quarantined[code] = quarantined.get(code, 0) + n
            elif status == "accepted":
                accepted.setdefault(code, {})[kind] = n
    out: list[dict[str, Any]] = []
    for code in list(roster_codes) + sorted(set(links) - set(roster_codes)):
        link = links.get(code)
        out.append(
            {
                "city_code": code,
                "state": derived_state(
                    link.state, link.last_contact_at, now=moment, silent_after=silent_after
                )
                if link
                else "never",
                "last_contact": _iso(link.last_contact_at) if link else None,
                "acked_seq": link.acked_seq if link else 0,
                "epoch": link.epoch if link else "",
                "records": counts.get(code, {}),
                "accepted": accepted.get(code, {}),
                "quarantined": quarantined.get(code, 0),
                "backlog": link.backlog if link else 0,
                "oldest_unsent_age_s": link.oldest_unsent_age_s if link else 0,
                "heartbeat_at": _iso(link.heartbeat_at) if link else None,
                "last_error": link.last_error if link else "",
                "last_error_at": _iso(link.last_error_at) if link else None,
                "city_last_error": link.city_last_error if link else "",
            }
        )
        out[-1]["error"] = current_error(out[-1])
    return out


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def current_error(row: dict[str, Any]) -> str:
    """A link row's error while it may still be the matter: none once the link is connected
    again (``last_error`` keeps the last refusal, with its time, as history); else the hub's
    last refusal, or the city's own last error from its heartbeat."""
    if row["state"] == "connected":
        return ""
    refusal = str(row["last_error"])
    # A silent link's refusal is the matter only when no contact came after it: a conflict
    # fixed (the city re-based and pushed again) is history once the city falls silent.
    refused_at, contact = row.get("last_error_at"), row["last_contact"]
    if row["state"] == "silent" and refusal and refused_at and contact:
        refusal = refusal if _instant(refused_at) >= _instant(contact) else ""
    return refusal or str(row["city_last_error"])


def format_table(rows: list[dict[str, Any]], tz_name: str = "UTC") -> str:
    """The table a person reads: last contact in the federation's zone, named in the header."""
    zone = ZoneInfo(tz_name)
    header = (
        f"{'city':<7} {'state':<12} {'acked':>8} {'records':>8} {'quar':>5} {'backlog':>8}  "
        f"{'last contact, ' + zone_label(tz_name):<36} error"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        total = sum(r["records"].values())
        error = current_error(r)
        contact = "-"
        if r["last_contact"]:
            local = datetime.fromisoformat(r["last_contact"]).astimezone(zone)
            contact = local.strftime("%Y-%m-%d %H:%M:%S")
        state = r["state"] + (" since" if r["state"] == "silent" else "")
        lines.append(
            f"{r['city_code']:<7} {state:<12} {r['acked_seq']:>8} {total:>8} "
            f"{r['quarantined']:>5} {r['backlog']:>8}  {contact:<36} "
            f"{error[:60]}"
        )
    return "\n".join(lines)


def notice_progress(engine: Engine, *, kind: str | None = None) -> list[dict[str, Any]]:
    """Per notice, oldest first (only ``kind``, e.g. ``ANNOUNCEMENT``, when given): how many
    cities it targets and how many have had it delivered, read, done or objected to."""
    query = (
        select(
            Notice.seq,
            Notice.kind,
            Notice.title,
            func.count(NoticeDelivery.city_code),
            func.count(NoticeDelivery.delivered_at),
            func.count(NoticeDelivery.read_at),
            func.count(NoticeDelivery.done_at),
            func.count(NoticeDelivery.objection_at),
        )
        .join(NoticeDelivery, NoticeDelivery.notice_seq == Notice.seq)
        .group_by(Notice.seq, Notice.kind, Notice.title)
        .order_by(Notice.seq)
    )
    if kind is not None:
        query = query.where(Notice.kind == kind)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    names = ("seq", "kind", "title", "targets", "delivered", "read", "done", "objections")
    # Kinds as /api/v1/notices names them (announcement, not ANNOUNCEMENT).
    return [dict(zip(names, (row[0], str(row[1]).lower(), *row[2:]), strict=True)) for row in rows]


def format_progress(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'notice':>14} {'kind':<22} {'targets':>7} {'delivered':>9} {'read':>5} {'done':>5} "
        f"{'objections':>10}  title"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['seq']:>14} {r['kind']:<22} {r['targets']:>7} {r['delivered']:>9} "
            f"{r['read']:>5} {r['done']:>5} {r['objections']:>10}  {r['title']}"
        )
    return "\n".join(lines)
