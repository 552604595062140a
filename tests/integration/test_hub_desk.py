"""The province's answers to one city about one of its tickets (``province_hub.services``
``resolve_escalation`` / ``request_trace``), on SQLite and PostgreSQL, with the escalation
sent by a real city store."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from city_node import services as city_services
from city_node import tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role
from city_node.store import create_schema as create_city_schema
from province_hub import desk, services
from province_hub.store import DeskCase, DeskEntry, create_schema
from sync.db import make_engine
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps
from tests.conftest import ROSTER_CODES

CITY, OTHER = ROSTER_CODES[0], ROSTER_CODES[1]


def _escalated_ticket(tmp_path: Path) -> tuple[str, list[pb.Envelope]]:
    """A city escalates a complaint to the province: its ticket id and outbox envelopes."""
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    try:
        create_city_schema(engine)
        city_services.open_store(engine, CITY)
        ctx = make_context(engine, CITY)
        new = tickets.NewTicket(
            "complaint", "BILL.DISPUTE", "phone", "13900000002", "王五", "ordinary", "话费争议"
        )
        junior, manager = Actor("op-j", Role.OPERATOR_JUNIOR), Actor("mgr", Role.MANAGER_HOTLINE)
        ticket = tickets.register(ctx, junior, new, then=Action.ESCALATE_MANAGER, note="拒绝")
        ticket_steps.act(ctx, manager, ticket.id, "escalate_province", note="客户要求省公司处理")
        with engine.connect() as conn:
            rows = conn.execute(select(OutboxRow.envelope).order_by(OutboxRow.seq)).scalars()
            envelopes = [pb.Envelope.FromString(r) for r in rows]
    finally:
        engine.dispose()
    return str(ticket.id), envelopes


@pytest.fixture
def hub(databases: Any) -> Any:
    engine = make_engine(databases("hub"))
    create_schema(engine)
    yield engine
    engine.dispose()


def _notices(engine: Any, city: str) -> list[pb.Notice]:
    return [
        pb.Notice.FromString(raw)
        for raw in services.notices_after(engine, city_code=city, after_seq=0)
    ]


def test_the_demo_desk_reads_escalations_through_the_desk(hub: Any, tmp_path: Path) -> None:
    """The demo's province desk sees what the escalation desk holds (one case per
    escalation, a follow-up is none), only for the demo's cities, without reading records."""
    from province_hub.demo_desk import Desk

    ticket_id, envelopes = _escalated_ticket(tmp_path)
    services.ingest_batch(
        hub, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )
    roster = tuple(ROSTER_CODES)
    assert Desk(hub, [CITY], "en", roster).escalations() == [(CITY, ticket_id, "BILL.DISPUTE")]
    assert Desk(hub, [OTHER], "en", roster).escalations() == []
    # Acting, it resolves the case as the desk's form does: with an outcome, by its account.
    Desk(hub, [CITY], "en", roster).act()
    with hub.connect() as conn:
        case = conn.execute(select(DeskCase.outcome, DeskCase.resolved_by)).one()
    assert tuple(case) == ("upheld", "gm-hotline")


def test_a_resolution_names_the_escalation_it_answers(hub: Any, tmp_path: Path) -> None:
    ticket_id, envelopes = _escalated_ticket(tmp_path)
    services.ingest_batch(
        hub, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )
    sent = desk.resolve_escalation(
        hub,
        city_code=CITY,
        ticket_id=ticket_id,
        resolution="退还一个月月租",
        resolved_by="gm-2",
        roster_codes=ROSTER_CODES,
    )
    assert _notices(hub, CITY) == [sent]
    assert sent.kind == pb.ESCALATION_RESOLUTION and list(sent.targets) == [CITY]
    assert sent.sender == "gm-2" and sent.priority == pb.HIGH
    assert sent.escalation_resolution == pb.EscalationResolution(
        ticket_id=ticket_id,
        escalation_seq=envelopes[-1].seq,
        resolution="退还一个月月租",
        resolved_by="gm-2",
        # The envelope itself, as the hub holds it: a restored city may hold another one
        # under that epoch and seq.
        escalation_epoch=envelopes[-1].epoch,
        escalation_digest=envelopes[-1].content_digest,
    )
    assert _notices(hub, OTHER) == []


def test_a_trace_of_an_escalated_ticket_names_the_escalation(hub: Any, tmp_path: Path) -> None:
    ticket_id, envelopes = _escalated_ticket(tmp_path)
    services.ingest_batch(
        hub, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )
    sent = desk.request_trace(
        hub, city_code=CITY, ticket_id=ticket_id, requested_by="gm-1", roster_codes=ROSTER_CODES
    )
    assert sent.trace_request == pb.TraceRequest(
        ticket_id=ticket_id,
        escalation_seq=envelopes[-1].seq,
        escalation_epoch=envelopes[-1].epoch,
        escalation_digest=envelopes[-1].content_digest,
    )


def test_a_resolution_of_an_unknown_escalation_needs_force(hub: Any) -> None:
    ask: dict[str, Any] = {
        "city_code": CITY,
        "ticket_id": "4242",
        "resolution": "refund",
        "resolved_by": "gm-1",
        "roster_codes": ROSTER_CODES,
    }
    with pytest.raises(desk.UnknownEscalation, match="no escalation of ticket 4242"):
        desk.resolve_escalation(hub, **ask)
    assert _notices(hub, CITY) == []
    forced = desk.resolve_escalation(hub, **ask, force=True)
    assert forced.escalation_resolution.escalation_seq == 0
    assert (
        forced.escalation_resolution.escalation_epoch,
        forced.escalation_resolution.escalation_digest,
    ) == ("", b"")
    assert [n.seq for n in _notices(hub, CITY)] == [forced.seq]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"city_code": "999999"}, "'999999' is not a city of the roster"),
        ({"ticket_id": "  "}, "ticket"),
        ({"resolution": " "}, "how the province resolved"),
    ],
)
def test_a_resolution_is_refused_before_anything_is_stored(
    hub: Any, change: dict[str, str], message: str
) -> None:
    ask: dict[str, Any] = {
        "city_code": CITY,
        "ticket_id": "7",
        "resolution": "refund",
        "resolved_by": "gm-1",
        "force": True,
    }
    with pytest.raises(ValueError, match=message):
        desk.resolve_escalation(hub, **{**ask, **change}, roster_codes=ROSTER_CODES)
    assert all(_notices(hub, code) == [] for code in ROSTER_CODES)


def test_a_trace_request_goes_to_that_city_only(hub: Any) -> None:
    sent = desk.request_trace(
        hub,
        city_code=CITY,
        ticket_id="17",
        requested_by="gm-1",
        roster_codes=ROSTER_CODES,
        from_gm_hotline=True,
    )
    assert _notices(hub, CITY) == [sent] and _notices(hub, OTHER) == []
    assert sent.kind == pb.TRACE_REQUEST and sent.sender == "gm-1"
    assert sent.trace_request == pb.TraceRequest(ticket_id="17", from_gm_hotline=True)
    with pytest.raises(ValueError, match="'999999' is not a city of the roster"):
        desk.request_trace(
            hub, city_code="999999", ticket_id="17", requested_by="x", roster_codes=ROSTER_CODES
        )
    # A ticket number that shows nothing names no ticket (the city's answer would be refused).
    with pytest.raises(desk.DeskError, match="ticket"):
        desk.request_trace(
            hub, city_code=CITY, ticket_id="\u200b", requested_by="x", roster_codes=ROSTER_CODES
        )
    assert _notices(hub, CITY) == [sent]


def test_a_desk_note_that_shows_nothing_is_refused(hub: Any, tmp_path: Path) -> None:
    _ticket_id, envelopes = _escalated_ticket(tmp_path)
    services.ingest_batch(
        hub, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )
    seq = envelopes[-1].seq
    entry: dict[str, Any] = {
        "city_code": CITY,
        "seq": seq,
        "actor": "gm-1",
        "role": "gm_hotline",
        "address": "",
    }
    for text in ("\u200b", "\ufeff\u2060", "\u200d\u200c", "\u00ad "):
        with pytest.raises(desk.DeskError, match="text"):
            desk.add_entry(hub, kind="note", text=text, **entry)
        with pytest.raises(desk.DeskError, match="text"):
            desk.add_entry(hub, kind="contact", channel="phone", text=text, **entry)
    with hub.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DeskEntry)).scalar_one() == 0
    desk.add_entry(hub, kind="note", text="客户同意退款", **entry)


def test_the_desk_migration_lands_escalations_already_held(databases: Any, tmp_path: Path) -> None:
    """A hub that held escalations (and a follow-up) before h0005 shows them on its desk."""
    from alembic import command
    from sqlalchemy import insert

    from province_hub.store import METADATA, MIGRATIONS, DeskCase, Record
    from sync.migrate import config, head_revision

    engine = make_engine(databases("pre_desk"))
    try:
        with engine.begin() as conn:
            command.upgrade(config(MIGRATIONS, METADATA, conn), "h0004")
        ticket_id, envelopes = _escalated_ticket(tmp_path)
        (escalation,) = [e for e in envelopes if e.WhichOneof("body") == "escalation"]
        follow_up = pb.Escalation(
            ticket_id=ticket_id,
            kind=pb.COMPLAINT,
            tier=pb.ORDINARY,
            reason="r",
            follow_up=pb.EscalationFollowUp(status="surveyed", satisfaction="neutral"),
        )
        at = escalation.created_at.ToDatetime(UTC)
        with engine.begin() as conn:
            for seq, subject, body in (
                (escalation.seq, f"escalation/{ticket_id}", escalation.escalation),
                (escalation.seq + 1, f"escalation_follow_up/{ticket_id}", follow_up),
            ):
                conn.execute(
                    insert(Record).values(
                        city_code=CITY,
                        seq=seq,
                        epoch="e",
                        kind="escalation",
                        status="accepted",
                        subject=subject,
                        created_at=at,
                        received_at=at,
                        digest=b"d" * 32,
                        body=body.SerializeToString(),
                    )
                )
        assert create_schema(engine) == head_revision(MIGRATIONS)
        with engine.connect() as conn:
            (case,) = conn.execute(select(DeskCase)).all()
        assert (case.city_code, case.seq, case.ticket_id) == (CITY, escalation.seq, ticket_id)
        assert case.category == "BILL.DISPUTE" and case.tier == "ordinary"
        assert (case.city_status, case.satisfaction) == ("surveyed", "neutral")
    finally:
        engine.dispose()


def test_hub_commands_write_their_audit_rows_from_the_cli(tmp_path: Path) -> None:
    """``fedsync hub staff add|disable``, ``hub resolve`` and ``hub trace`` are audited with
    the address "cli"; a refused command writes nothing."""
    import subprocess
    import sys

    from province_hub import audit

    db = f"sqlite:///{tmp_path / 'hub.sqlite'}"

    def hub(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sync.cli", "hub", *args, "--database-url", db],
            input=stdin,
            capture_output=True,
            text=True,
        )

    steps = [
        hub(
            "staff",
            "add",
            "--id",
            "gm-9",
            "--name",
            "总经理热线",
            "--role",
            "gm_hotline",
            "--password-stdin",
            stdin="x" * 12,
        ),
        hub("staff", "disable", "--id", "gm-9"),
        hub(
            "staff",
            "add",
            "--id",
            "gm-1",
            "--name",
            "热线",
            "--role",
            "gm_hotline",
            "--password-stdin",
            stdin="x" * 12,
        ),
        hub(
            "staff",
            "add",
            "--id",
            "sup-1",
            "--name",
            "督查",
            "--role",
            "supervisor",
            "--password-stdin",
            stdin="x" * 12,
        ),
        hub(
            "resolve",
            "--city",
            CITY,
            "--ticket",
            "77",
            "--resolution",
            "退款",
            "--force",
            "--outcome",
            "upheld",
            "--by",
            "gm-1",
        ),
        hub("trace", "--city", CITY, "--ticket", "77", "--by", "sup-1"),
    ]
    assert all(s.returncode == 0 for s in steps), [s.stderr for s in steps]
    refused = hub(
        "resolve", "--city", CITY, "--ticket", "78", "--resolution", "x", "--outcome", "upheld"
    )
    # How the complaint was settled is asked for, as the web and the API ask for it.
    unsettled = hub("resolve", "--city", CITY, "--ticket", "77", "--resolution", "x", "--force")
    assert unsettled.returncode == 2 and "--outcome" in unsettled.stderr
    assert refused.returncode == 2 and "no escalation of ticket 78" in refused.stderr
    # In a person's name only for an enabled account whose role may do it.
    for by, words in (
        ("ghost", "--by 'ghost': no hub account has that id"),
        ("gm-9", "--by 'gm-9': that account is disabled"),
        ("sup-1", "--by 'sup-1' is a supervisor: only gm_hotline may"),
    ):
        named = hub("resolve", "--city", CITY, "--ticket", "77", "--resolution", "x",
                    "--outcome", "upheld", "--force", "--by", by)  # fmt: skip
        assert named.returncode == 2 and words in named.stderr, named.stderr
    # The customer's name and phone are asked for by the GM hotline only, as at the web.
    unmasked = hub("trace", "--city", CITY, "--ticket", "77", "--by", "sup-1", "--gm-hotline")
    assert unmasked.returncode == 2
    assert "--by 'sup-1' is a supervisor: only gm_hotline may" in unmasked.stderr
    engine = make_engine(db)
    try:
        rows = sorted((e.action.value, e.target, e.address, e.actor) for e in audit.entries(engine))
    finally:
        engine.dispose()
    assert [(a, t, addr) for a, t, addr, _ in rows] == [
        ("escalation_resolved", f"ticket:{CITY}/77", "cli"),
        ("staff_added", "staff:gm-1", "cli"),
        ("staff_added", "staff:gm-9", "cli"),
        ("staff_added", "staff:sup-1", "cli"),
        ("staff_disabled", "staff:gm-9", "cli"),
        ("trace_requested", f"ticket:{CITY}/77", "cli"),
    ]
    assert {actor for a, _, _, actor in rows if a.startswith(("escalation", "trace"))} == {
        "gm-1",
        "sup-1",
    }


def test_a_resolved_case_is_resolved_again_only_with_force(hub: Any, tmp_path: Path) -> None:
    from province_hub.store import DeskCase

    ticket_id, envelopes = _escalated_ticket(tmp_path)
    services.ingest_batch(
        hub, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )
    ask: dict[str, Any] = {
        "city_code": CITY,
        "ticket_id": ticket_id,
        "resolved_by": "gm-1",
        "roster_codes": ROSTER_CODES,
    }
    first = desk.resolve_escalation(hub, **ask, resolution="退款", outcome="upheld")
    with pytest.raises(desk.CaseResolved, match="resolved already"):
        desk.resolve_escalation(hub, **ask, resolution="再次", outcome="not_upheld")
    with pytest.raises(desk.DeskError, match="outcome"):
        desk.resolve_escalation(hub, **ask, resolution="x", outcome="great", force=True)
    second = desk.resolve_escalation(hub, **ask, resolution="补充说明", force=True)
    assert [n.seq for n in _notices(hub, CITY)] == [first.seq, second.seq]
    with hub.connect() as conn:
        case = conn.execute(select(DeskCase)).one()
    assert (case.outcome, case.resolution, case.resolution_notice_seq) == (
        "upheld",
        "补充说明",
        second.seq,
    )


def test_demo_desk_names_categories_from_the_packaged_tree(tmp_path: Path) -> None:
    """Without --categories the demo desk names a category as the cities' packaged tree does;
    with a CSV, as that file does."""
    from province_hub.demo_desk import _category_names

    assert _category_names("")["BILL.DISPUTE"] == ("话费争议", "Disputed charges")
    own = tmp_path / "categories.csv"
    own.write_text(
        "code,parent,name_zh,name_en,complaint_limit_workdays\nX,,自定义,Custom,5\n", "utf-8"
    )
    assert _category_names(str(own)) == {"X": ("自定义", "Custom")}
