"""What the city console shows of the province's newer notice fields, on SQLite and
PostgreSQL: standard answers by key and version (the latest is current, older ones are
marked superseded and left out of the operators' search, a version arriving out of order
does not displace the current one) and the province's answer to an objection linked to the
notice objected to (page, API, ``fedsync city inbox``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from city_node import services, staff
from city_node.context import make_context
from city_node.store import create_schema
from city_node.web.app import create_app
from sync.cli import main
from sync.db import make_engine
from sync.outbox import Outbox, OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import serving

CITY = "620100"
PASSWORD = "correct-horse-1"


@pytest.fixture
def console(databases: Any) -> Iterator[tuple[str, Any, str]]:
    url = databases("links")
    engine = make_engine(url)
    create_schema(engine)
    services.open_store(engine, CITY)
    staff.add(engine, staff_id="leader", name="Leader", role="leader", password=PASSWORD)
    app = create_app(make_context(engine, CITY), Outbox(engine), secret_key=b"k" * 32)
    with serving(app) as base_url:
        yield base_url, engine, url
    engine.dispose()


@contextmanager
def signed_in(base_url: str) -> Iterator[httpx.Client]:
    """A client signed in to the console as the leader, through the login form."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token
        login = {"csrf_token": token.group(1), "staff_id": "leader", "password": PASSWORD}
        assert client.post("/login", data=login).status_code == 303
        yield client


def _answer(seq: int, version: int, text: str, key: str = "roaming") -> pb.Notice:
    n = pb.Notice(
        seq=seq,
        kind=pb.STANDARD_ANSWER,
        priority=pb.NORMAL,
        title=f"漫游口径 v{version}",
        standard_answer=pb.StandardAnswer(
            topic="漫游费争议", category="BILL", answer=text, key=key, version=version
        ),
    )
    n.created_at.GetCurrentTime()
    return n


def _plain(seq: int, title: str, **fields: Any) -> pb.Notice:
    n = pb.Notice(
        seq=seq, kind=pb.ANNOUNCEMENT, priority=pb.NORMAL, title=title, body="…", **fields
    )
    n.created_at.GetCurrentTime()
    return n


def test_versions_and_links_on_the_console(console: tuple[str, Any, str], capsys: Any) -> None:
    base_url, engine, url = console
    for n in (
        _answer(10, 1, "旧口径 roaming"),
        _answer(11, 2, "新口径 roaming"),
        _plain(12, "盘点任务"),
        _plain(13, "Re #12: 盘点任务", reply_to_seq=12),
        _answer(14, 1, "重复的旧版本 roaming"),  # a lower version arriving late
        _answer(15, 1, "另一口径 roaming", key="other"),
    ):
        assert services.accept_notice(engine, n)

    found = services.search_answers(engine, "roaming")
    assert sorted((a.notice_seq, a.version) for a in found) == [(11, 2), (15, 1)]
    assert services.superseded_answers(engine, [10, 11, 14, 15]) == {10: 11, 14: 11}

    with signed_in(base_url) as client:
        page = client.get("/inbox").text

        def section(seq: int) -> str:
            return page.split(f'id="notice-{seq}"')[1].split("</section>")[0]

        assert 'class="tag bad superseded"' in section(10) and "#11" in section(10)
        assert 'class="tag bad superseded"' in section(14)
        assert "current-version" in section(11) and "superseded" not in section(11)
        assert 'href="#notice-12"' in section(13) and "reply-to" in section(13)
        assert "reply-to" not in section(12)
        api = client.get("/api/v1/inbox", auth=("leader", PASSWORD)).json()
        assert {n["notice_seq"]: n["reply_to_seq"] for n in api}[13] == 12
    assert main(["city", "inbox", "--code", CITY, "--database-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if "(re #12)" in line] == [
        next(line for line in lines[1:] if line.split()[1] == "13")
    ]


def test_a_notice_without_priority_is_kept_as_normal(databases: Any) -> None:
    """A hub that leaves the priority out (proto3 default) must not make the city drop the
    notice: it is stored, and shown, as normal (on PostgreSQL the enum's zero name did not fit
    the column and the notice could not be stored)."""
    engine = make_engine(databases("unset_priority"))
    try:
        create_schema(engine)
        services.open_store(engine, CITY)
        notice = pb.Notice(seq=7, kind=pb.ANNOUNCEMENT, title="无优先级", body="…")
        notice.created_at.GetCurrentTime()
        assert services.accept_notice(engine, notice)
        (stored,) = services.inbox(engine)
        assert (stored.notice_seq, stored.priority) == (7, "NORMAL")
    finally:
        engine.dispose()


def _reminder_as_the_hub_writes_it(seq: int) -> pb.Notice:
    from province_hub.deadlines import Overdue, _reminder

    due = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    notice = _reminder(Overdue("620100", "statistics", "week", date(2026, 11, 16), due))
    notice.seq = seq
    assert notice.report_reminder.due_by.ToDatetime(UTC) == due
    return notice


def test_the_hubs_own_notices_are_titled_in_the_readers_language(
    console: tuple[str, Any, str],
) -> None:
    base_url, engine, _ = console
    hub_written = (
        pb.Notice(
            seq=21,
            kind=pb.REJECTION,
            priority=pb.HIGH,
            title="statistics_report seq 7 quarantined",
            body="The hub stored your statistics_report (seq 7) as quarantined: …",
            sender="hub",
            rejection=pb.Rejection(seq=7, body_kind="statistics_report", reason="…"),
        ),
        pb.Notice(
            seq=22,
            kind=pb.ESCALATION_RESOLUTION,
            priority=pb.HIGH,
            title="Escalation of ticket 194 resolved",
            body="已回访",
            sender="gm-hotline",
            escalation_resolution=pb.EscalationResolution(ticket_id="194", resolution="已回访"),
        ),
        pb.Notice(
            seq=23,
            kind=pb.TRACE_REQUEST,
            priority=pb.NORMAL,
            title="Trace request: ticket 195",
            body="Send the ticket's history.",
            sender="supervisor",
            trace_request=pb.TraceRequest(ticket_id="195"),
        ),
        _plain(24, "Kept as written"),  # a person's title stays theirs
        _reminder_as_the_hub_writes_it(25),
        # From a hub before wire schema 1.5: nothing says what it is about; its title stands.
        pb.Notice(seq=26, kind=pb.REMINDER, title="Overdue: monthly qa report for month …"),
    )
    for n in hub_written:
        n.created_at.GetCurrentTime()
        assert services.accept_notice(engine, n)
    with signed_in(base_url) as client:

        def titles(lang: str) -> dict[int, str]:
            page = client.get(f"/inbox?lang={lang}").text
            found = re.findall(
                r'id="notice-(\d+)".*?<span class="notice-title">([^<]*)</span>', page, re.S
            )
            return {int(seq): title for seq, title in found}

        assert titles("zh") == {
            21: "统计报表（序号 7）被省中心隔离，请更正后重报",
            22: "工单 194 的升级投诉已办结",
            23: "调单请求：工单 195",
            24: "Kept as written",
            25: "逾期提醒：2026-11-16 起的周统计报表未报",
            26: "Overdue: monthly qa report for month …",
        }
        assert titles("en") == {
            21: "statistics report seq 7 quarantined",
            22: "Escalation of ticket 194 resolved",
            23: "Trace request: ticket 195",
            24: "Kept as written",
            25: "Overdue: statistics report for the week starting 2026-11-16",
            26: "Overdue: monthly qa report for month …",
        }


def test_a_province_notice_quoting_a_customer_is_masked_for_roles_that_do_not_call_them(
    console: tuple[str, Any, str],
) -> None:
    """The leader does not call customers: a resolution quoting the customer's phone and name
    (and any other number) reads masked in the inbox, as the ticket's own history does; the
    node's administrator at the shell reads it as sent."""
    from city_node import tickets
    from city_node.context import Actor
    from city_node.domain import Action, Role

    base_url, engine, _ = console
    ticket = tickets.register(
        make_context(engine, CITY),
        Actor("op-1", Role.OPERATOR_JUNIOR),
        tickets.NewTicket(
            "complaint", "NET.BROADBAND", "phone", "13800000001", "王小明", "ordinary", "c"
        ),
        then=Action.ANSWER,
    )
    said = (
        f"已与王小明（13800000001）协商，退还一个月月租；另留电话 0931-8456789（工单 {ticket.id}）"
    )
    notice = pb.Notice(
        seq=31,
        kind=pb.ESCALATION_RESOLUTION,
        priority=pb.HIGH,
        title=f"Escalation of ticket {ticket.id} resolved",
        body=said,
        sender="gm-hotline",
        escalation_resolution=pb.EscalationResolution(ticket_id=str(ticket.id), resolution=said),
    )
    notice.created_at.GetCurrentTime()
    assert services.accept_notice(engine, notice)
    masked = (
        f"已与王**（138****0001）协商，退还一个月月租；另留电话 093****6789（工单 {ticket.id}）"
    )
    with signed_in(base_url) as client:
        [shown] = [n for n in client.get("/api/v1/inbox").json() if n["notice_seq"] == 31]
        page = client.get("/inbox").text
        zh = client.get("/inbox", params={"lang": "zh"}).text
    assert shown["handled_note"].startswith("resolution ")  # stored as the node wrote it
    assert "处理结果" in zh and "resolution not applied" not in zh  # said in the page's words
    assert shown["body"] == masked
    assert "13800000001" not in page and "王小明" not in page and "8456789" not in page
    assert "138****0001" in page
    [held] = [n for n in services.inbox(engine) if n.notice_seq == 31]
    assert held.body == said  # the store keeps the words; only the reading is masked
    # The leader's receipt names the customer: what leaves the city does not.
    from sqlalchemy import select

    from sync.outbox import OutboxRow

    seq = services.record_receipt(
        engine,
        notice_seq=31,
        action="done",
        actor=Actor("leader-1", Role.LEADER),
        note="已回访王小明(13800000001)，客户满意",
    )
    with engine.connect() as conn:
        raw = conn.execute(select(OutboxRow.envelope).where(OutboxRow.seq == seq)).scalar_one()
    assert pb.Envelope.FromString(raw).notice_receipt.note == "已回访王**(138****0001)，客户满意"


def test_a_resolution_of_an_escalation_this_store_never_sent_is_not_applied(
    console: tuple[str, Any, str],
) -> None:
    """A store restored from an older copy gives a lost ticket's number to a new customer's
    ticket; the province's answer to the lost escalation (its seq) must not land on the new
    customer's ticket. The answer to the escalation this store sent is applied, to that one."""
    from sqlalchemy import select

    from city_node import tickets
    from city_node.context import Actor
    from city_node.domain import Action, Role, Status
    from city_node.notice_refs import handled_text
    from city_node.store import Escalation, InboxNotice
    from tests import ticket_steps

    _, engine, _ = console
    ctx = make_context(engine, CITY)
    ticket = tickets.register(
        ctx,
        Actor("op-1", Role.OPERATOR_SENIOR),
        tickets.NewTicket(
            "complaint", "BILL.DISPUTE", "web", "13900000004", "丁客户", "ordinary", "d"
        ),
        then=Action.ESCALATE_MANAGER,
        note="m",
    )
    ticket_steps.act(
        ctx,
        Actor("mgr-1", Role.MANAGER_HOTLINE),
        ticket.id,
        "escalate_province",
        note="to province",
    )
    with engine.connect() as conn:
        sent_seq = conn.execute(
            select(Escalation.outbox_seq).where(Escalation.ticket_id == ticket.id)
        ).scalar_one()

    def handled(seq: int) -> str:
        """What the node noted of the notice ``seq``."""
        with engine.connect() as conn:
            return str(
                conn.execute(
                    select(InboxNotice.handled_note).where(InboxNotice.notice_seq == seq)
                ).scalar_one()
            )

    def unresolved() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(Escalation.resolved_at)).scalar_one() is None

    def resolution(
        seq: int, escalation_seq: int, words: str, *, epoch: str = "", digest: bytes = b""
    ) -> pb.Notice:
        n = pb.Notice(
            seq=seq,
            kind=pb.ESCALATION_RESOLUTION,
            priority=pb.HIGH,
            title=f"Escalation of ticket {ticket.id} resolved",
            body=words,
            sender="gm-1",
            escalation_resolution=pb.EscalationResolution(
                ticket_id=str(ticket.id),
                escalation_seq=escalation_seq,
                resolution=words,
                escalation_epoch=epoch,
                escalation_digest=digest,
            ),
        )
        n.created_at.GetCurrentTime()
        return n

    assert services.accept_notice(engine, resolution(41, sent_seq + 100, "refund customer C"))
    assert tickets.get(ctx, ticket.id).status is Status.ESCALATED_PROVINCE
    note = handled(41)
    assert unresolved()
    assert note == (
        f"resolution not applied: it answers escalation seq {sent_seq + 100}, which this store "
        f"never sent for ticket {ticket.id} (its escalations: seq {sent_seq}; a store restored "
        "from an older copy?)"
    )
    assert handled_text(note, "zh") == (
        f"处理结果未能记入：它答复的是序号 {sent_seq + 100} 的升级，本节点从未为工单 "
        f"{ticket.id} 发出该升级（本工单的升级序号：{sent_seq}；节点数据是否已从较早的备份恢复？）"
    )

    # The hub names the envelope it answers (wire schema 1.6): another escalation under this
    # store's epoch and that seq — a restored copy gave the lost ticket's number again and
    # escalated the new customer's ticket — is not the one answered.
    epoch = Outbox(engine).snapshot().epoch
    lost = resolution(40, sent_seq, "refund the lost customer", epoch=epoch, digest=b"x" * 32)
    assert services.accept_notice(engine, lost)
    assert tickets.get(ctx, ticket.id).status is Status.ESCALATED_PROVINCE
    note = handled(40)
    assert unresolved()
    assert note == (
        f"resolution not applied: it answers escalation seq {sent_seq} as the hub holds it, "
        f"and this store's escalation of ticket {ticket.id} under that seq is another one (a "
        "store restored from an older copy: the ticket's number was given again)"
    )
    assert str(handled_text(note, "zh")).startswith("处理结果未能记入：它答复的是省公司所存序号")

    assert services.accept_notice(engine, resolution(42, sent_seq, "refund customer D"))
    assert tickets.get(ctx, ticket.id).status is Status.RETURNED
    with engine.connect() as conn:
        row = conn.execute(select(Escalation.resolution, Escalation.resolution_notice_seq)).one()
    assert tuple(row) == ("refund customer D", 42)

    # Escalated once more; the province re-sends its answer to the first escalation (from
    # its shell, --force): it is recorded on that one, and the ticket keeps waiting for the
    # answer to the second.
    manager = Actor("mgr-1", Role.MANAGER_HOTLINE)
    ticket_steps.act(ctx, manager, ticket.id, "escalate_manager", note="still unhappy")
    ticket_steps.act(ctx, manager, ticket.id, "escalate_province", note="again")
    assert services.accept_notice(engine, resolution(43, sent_seq, "refund customer D, again"))
    assert tickets.get(ctx, ticket.id).status is Status.ESCALATED_PROVINCE
    with engine.connect() as conn:
        rows = conn.execute(
            select(Escalation.outbox_seq, Escalation.resolution_notice_seq).order_by(Escalation.id)
        ).all()
    note = handled(43)
    assert [(r.outbox_seq == sent_seq, r.resolution_notice_seq) for r in rows] == [
        (True, 43),
        (False, None),
    ]
    assert note == (
        f"resolution recorded on escalation seq {sent_seq} of ticket {ticket.id}; its latest "
        "escalation is another one: the ticket is not changed"
    )
    assert handled_text(note, "zh") == (
        f"处理结果已记入工单 {ticket.id} 序号 {sent_seq} 的升级；"
        "该工单最近一次升级是另一次：工单未改动"
    )
    # The answer to the second escalation is applied to the ticket.
    second = rows[1].outbox_seq
    with engine.connect() as conn:
        sent = pb.Envelope.FromString(
            conn.execute(select(OutboxRow.envelope).where(OutboxRow.seq == second)).scalar_one()
        )
    answer = resolution(
        44, second, "escalated again: refunded", epoch=sent.epoch, digest=sent.content_digest
    )
    assert services.accept_notice(engine, answer)
    assert tickets.get(ctx, ticket.id).status is Status.RETURNED
    # A resolution for a ticket this store does not have says so, as before.
    missing = resolution(45, 9999, "x")
    missing.escalation_resolution.ticket_id = "999999"
    assert services.accept_notice(engine, missing)
    said = handled(45)
    assert said.startswith("resolution not applied") and "never sent" not in said

    # A trace of the escalated ticket names the escalation the hub holds: answered with the
    # ticket when it is this store's, as not found when the number names another ticket here.
    def trace(seq: int, digest: bytes) -> pb.TicketTrace:
        n = pb.Notice(
            seq=seq,
            kind=pb.TRACE_REQUEST,
            title=f"Trace request: ticket {ticket.id}",
            trace_request=pb.TraceRequest(
                ticket_id=str(ticket.id),
                escalation_seq=second,
                escalation_epoch=sent.epoch,
                escalation_digest=digest,
            ),
        )
        n.created_at.GetCurrentTime()
        assert services.accept_notice(engine, n)
        with engine.connect() as conn:
            rows = conn.execute(
                select(OutboxRow.envelope)
                .where(OutboxRow.kind == "ticket_trace")
                .order_by(OutboxRow.seq.desc())
            ).scalars()
            return pb.Envelope.FromString(next(iter(rows))).ticket_trace

    other = trace(46, b"y" * 32)
    assert (other.request_notice_seq, other.found, len(other.history)) == (46, False, 0)
    note = handled(46)
    assert f"ticket {ticket.id} here is not the escalated ticket the province holds" in note
    assert str(handled_text(note, "zh")).startswith("调单已答复：本节点的工单")
    own = trace(47, sent.content_digest)
    assert (own.request_notice_seq, own.found) == (47, True) and len(own.history) > 0
