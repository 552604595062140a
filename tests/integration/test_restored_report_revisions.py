"""A city store restored from an older copy re-drafts a report the hub holds later revisions
of, with a real hub and city over mutual TLS (SQLite and PostgreSQL).

The copy knows revision 1 of the week; the lost store had sent 2 and 3. The restored store's
next draft takes 2, which the hub holds with other figures: it is quarantined, and the
REJECTION says the lowest revision the hub takes (wire schema 1.5). The city's next draft of
that week takes that number, so the leader approves one refused correction, not one per lost
revision.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from city_node import reports, tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role
from city_node.store import Report
from province_hub import consolidation
from province_hub.store import Record
from sync.outbox import Outbox
from sync.roster import load_roster
from tests.conftest import ROSTER_CODES, wait_until
from tests.integration.test_restore_paths import rebase
from tests.integration.test_restored_rejections import rejections_in_inbox

CITY = ROSTER_CODES[0]
ZONE = ZoneInfo("Asia/Shanghai")
OP = Actor("op-1", Role.OPERATOR_JUNIOR)
LEADER = Actor("leader-1", Role.LEADER)
WEEK = "2026-10-05"


def _complaint(ctx: Any, day: int) -> None:
    tickets.register(
        ctx,
        OP,
        tickets.NewTicket(
            "complaint", "NET.BROADBAND", "phone", "13800000000", "n", "ordinary", "c"
        ),
        at=datetime(2026, 10, day, 9, 0, tzinfo=ZONE),
        then=Action.ANSWER,
    )


def _send_week(ctx: Any) -> Any:
    draft = reports.draft(ctx, "statistics", "week", WEEK, by="stat-1")
    return reports.approve(ctx, LEADER, draft.id)


def _hub_week(hub: Any) -> dict[str, Any]:
    got = consolidation.figures(hub.engine, period_kind="week", start=WEEK, roster=load_roster())
    (city,) = [c for c in got["cities"] if c["city_code"] == CITY]
    return dict(city)


async def test_a_restored_city_drafts_its_correction_at_the_revision_the_hub_names(
    databases, hub_settings_factory, city_settings_factory, start_hub, start_city
):
    hub = await start_hub(hub_settings_factory(databases("hub")))
    settings = city_settings_factory(CITY, databases("city"), hub.port)
    city = start_city(settings)
    ctx = make_context(city.engine, CITY)
    _complaint(ctx, 5)
    assert _send_week(ctx).revision == 1
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq >= 1, what="rev 1")
    await city.stop()
    city.engine.dispose()
    backup_url = databases.copy(settings.database_url)  # knows revision 1 only

    city = start_city(settings)
    ctx = make_context(city.engine, CITY)
    for day in (6, 7):  # the lost store corrects the week twice
        _complaint(ctx, day)
        _send_week(ctx)
    last = Outbox(city.engine).snapshot().last_seq
    await wait_until(lambda: Outbox(city.engine).snapshot().delivered_seq == last, what="sent")
    await city.stop()
    city.engine.dispose()
    assert _hub_week(hub)["revision"] == 3

    restored_settings = dataclasses.replace(settings, database_url=backup_url)
    restored = start_city(restored_settings)
    await wait_until(lambda: Outbox(restored.engine).snapshot().state == "conflict")
    await restored.stop()
    await rebase(restored_settings, restored.engine)
    restored = start_city(restored_settings)
    ctx = make_context(restored.engine, CITY)
    for day in (6, 7, 8):  # the week worked again, one complaint more than before
        _complaint(ctx, day)

    refused = _send_week(ctx)
    assert refused.revision == 2  # all this store knows of: its own revision 1
    await wait_until(lambda: rejections_in_inbox(restored.engine), what="the rejection")
    [rejection] = rejections_in_inbox(restored.engine)
    assert rejection.seq == refused.outbox_seq and rejection.next_revision == 4
    assert "4 or above" in rejection.reason
    with restored.engine.connect() as conn:
        floor = conn.execute(
            select(Report.hub_next_revision).where(Report.id == refused.id)
        ).scalar_one()
    assert floor == 4
    assert _hub_week(hub)["revision"] == 3  # the hub's figures did not move
    # The refused report reads as refused wherever reports are listed, with the reason.
    shown = reports.get(ctx, refused.id)
    assert shown.status == "approved" and shown.hub_rejection == rejection.reason
    from city_node.cli_work import _report_line

    assert _report_line(shown).endswith("— refused by the hub: see the inbox")
    others = [r.hub_rejection for r in reports.recent(ctx) if r.id != refused.id]
    assert others and set(others) == {None}

    corrected = _send_week(ctx)
    assert corrected.revision == 4
    await wait_until(lambda: _hub_week(hub).get("revision") == 4, what="revision 4 counted")
    assert _hub_week(hub)["complaints_received"] == 4
    with hub.engine.connect() as conn:
        statuses = sorted(
            (int(revision), status)
            for revision, status in conn.execute(
                select(Record.revision, Record.status).where(
                    Record.city_code == CITY, Record.kind == "statistics_report"
                )
            )
        )
    # Revision 2 stands twice: the lost store's, accepted, and the copy's, quarantined.
    assert statuses == [
        (1, "accepted"), (2, "accepted"), (2, "quarantined"), (3, "accepted"), (4, "accepted")
    ]  # fmt: skip
    # A later draft still counts from the store's own revisions once it is past the floor.
    assert reports.draft(ctx, "statistics", "week", WEEK, by="stat-1").revision == 5


def test_a_draft_made_before_the_rejection_came_takes_the_revision_it_names(databases):
    """The statistician re-drafted the week while the refused revision was on its way: the
    REJECTION renumbers that waiting draft (and its body) to the hub's floor, so the
    leader's approval sends a revision the hub takes, not one more refusal."""
    from city_node import services
    from city_node.store import create_schema
    from sync.db import make_engine
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    engine = make_engine(databases("city"))
    try:
        create_schema(engine)
        services.open_store(engine, CITY)
        ctx = make_context(engine, CITY)
        _complaint(ctx, 5)
        sent = _send_week(ctx)
        _complaint(ctx, 6)
        waiting = reports.draft(ctx, "statistics", "week", WEEK, by="stat-1")
        assert (sent.revision, waiting.revision) == (1, 2)
        rejection = pb.Notice(
            seq=3,
            kind=pb.REJECTION,
            priority=pb.HIGH,
            title=f"statistics_report seq {sent.outbox_seq} quarantined",
            sender="hub",
            rejection=pb.Rejection(
                seq=sent.outbox_seq,
                body_kind="statistics_report",
                reason="revision 1 of this period is held already …: 4 or above",
                next_revision=4,
            ),
        )
        rejection.created_at.GetCurrentTime()
        assert services.accept_notice(engine, rejection)
        renumbered = reports.get(ctx, waiting.id)
        assert (renumbered.status, renumbered.revision) == ("draft", 4)
        assert (reports.get(ctx, sent.id).hub_rejection or "").startswith("revision 1 of this")
        assert renumbered.hub_rejection is None
        approved = reports.approve(ctx, LEADER, waiting.id)
        (row,) = [
            p for p in Outbox(engine).pending(after_seq=0, limit=10) if p.seq == approved.outbox_seq
        ]
        assert pb.Envelope.FromString(row.envelope).statistics_report.revision == 4
        # Another period's draft is not touched.
        other = reports.draft(ctx, "statistics", "week", "2026-10-12", by="stat-1")
        assert other.revision == 1
    finally:
        engine.dispose()
