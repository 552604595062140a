"""Escalations landed for the general-manager hotline's desk at ingest, in the ingest's
transaction: a new escalation becomes a :class:`~province_hub.store.DeskCase`; a city's
follow-up (``Escalation.follow_up``) updates the case its resolution answered.

Only what the queue sorts and filters by is copied; the customer's contact stays in the
record's body (read by :mod:`province_hub.desk` for the one case shown).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from province_hub.store import DeskCase, Record
from sync.pb.fedsync.v1 import federation_pb2 as pb

#: Subject prefixes of escalation records (records.subject), new ones and follow-ups.
ESCALATION_SUBJECT = "escalation/"
FOLLOW_UP_SUBJECT = "escalation_follow_up/"


def subject(body: pb.Escalation) -> str:
    """What an escalation record is about; a follow-up is never taken for a new one."""
    prefix = FOLLOW_UP_SUBJECT if body.HasField("follow_up") else ESCALATION_SUBJECT
    return f"{prefix}{body.ticket_id}"


def _when(ts: Any) -> datetime:
    return ts.ToDatetime(UTC)  # type: ignore[no-any-return]


def land_escalations(
    conn: Connection,
    *,
    city_code: str,
    escalations: Sequence[tuple[int, datetime, pb.Escalation, datetime]],
) -> None:
    """Land accepted escalation records ``(seq, created_at, body, received_at)`` in the
    caller's transaction (``received_at``: the record's, the first one for a re-send)."""
    for seq, created_at, body, received_at in escalations:
        if body.HasField("follow_up"):
            _follow_up(conn, city_code, seq, body, received_at)
            continue
        conn.execute(
            insert(DeskCase).values(
                city_code=city_code,
                seq=seq,
                ticket_id=body.ticket_id[:64],
                kind=pb.TicketKind.Name(body.kind).lower(),
                category=body.category[:64],
                channel=body.channel[:32],
                tier=pb.CustomerTier.Name(body.tier).lower(),
                registered_at=_when(body.registered_at)
                if body.HasField("registered_at")
                else created_at,
                # Not after the hub had it: a city clock running ahead must not make a case
                # younger than it is (a negative age on the desk).
                escalated_at=min(created_at, received_at),
                received_at=received_at,
            )
        )


def _follow_up(
    conn: Connection, city_code: str, seq: int, body: pb.Escalation, received_at: datetime
) -> None:
    """The case the follow-up's resolution answered (or, for a follow-up on a resolution
    sent from the command line, the ticket's latest case) learns the city's side."""
    f = body.follow_up
    case = conn.execute(
        select(DeskCase.seq)
        .where(DeskCase.city_code == city_code, DeskCase.ticket_id == body.ticket_id)
        .order_by(
            (DeskCase.resolution_notice_seq == f.resolution_notice_seq).desc(),
            DeskCase.seq.desc(),
        )
        .limit(1)
    ).scalar()
    if case is None:
        return  # an escalation this hub never held (restored from an older backup)
    conn.execute(
        update(DeskCase)
        .where(DeskCase.city_code == city_code, DeskCase.seq == case)
        .values(
            follow_up_seq=seq,
            city_status=f.status[:32],
            closed_at=_when(f.closed_at) if f.HasField("closed_at") else None,
            surveyed_at=_when(f.surveyed_at) if f.HasField("surveyed_at") else None,
            satisfaction=f.satisfaction[:32] or None,
        )
    )


def backfill(conn: Connection) -> int:
    """Land every accepted escalation record already stored, in (city, seq) order (for the
    migration that introduces the desk); how many records."""
    rows = conn.execute(
        select(Record.city_code, Record.seq, Record.created_at, Record.received_at, Record.body)
        .where(Record.kind == "escalation", Record.status == "accepted")
        .order_by(Record.city_code, Record.seq)
    ).all()
    for r in rows:
        land_escalations(
            conn,
            city_code=r.city_code,
            escalations=[
                (
                    int(r.seq),
                    _utc(r.created_at),
                    pb.Escalation.FromString(r.body),
                    _utc(r.received_at),
                )
            ],
        )
    return len(rows)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
