"""`fedsync city …` work commands and `fedsync hub resolve|trace`, in-process on real SQLite
stores: what a person types, what they see, what lands in the stores."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from city_node import services as city_services
from city_node import staff, tickets
from city_node.context import Actor, make_context
from city_node.domain import Action, Role, Status
from city_node.store import create_schema
from province_hub import services as hub_services
from sync.cli import main
from sync.db import make_engine
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests import ticket_steps

CITY, OTHER = "620100", "620200"


@pytest.fixture
def city(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Flags naming a fresh city store, made as a person makes one (`city migrate`)."""
    flags = ["--code", CITY, "--database-url", f"sqlite:///{tmp_path / 'city.sqlite'}"]
    assert main(["city", "migrate", *flags]) == 0
    capsys.readouterr()
    return flags


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, f"fedsync {' '.join(argv)} -> {code}: {err}"
    return out


def add_staff(capsys, monkeypatch, city: list[str], staff_id: str, role: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    out = ok(
        capsys,
        "city",
        "staff",
        "add",
        "--id",
        staff_id,
        "--name",
        f"{staff_id} 名",
        "--role",
        role,
        "--password-stdin",
        *city,
    )
    assert f"staff {staff_id}" in out and role in out


def test_staff_tickets_and_reports(capsys, monkeypatch, city: list[str], tmp_path: Path):
    assert "city store at revision c" in ok(capsys, "city", "migrate", *city)
    for staff_id, role in (
        ("op-j", "operator_junior"),
        ("lead", "leader"),
        ("qa", "qa_inspector"),
        ("stat", "statistician"),
    ):
        add_staff(capsys, monkeypatch, city, staff_id, role)
    listed = json.loads(ok(capsys, "city", "staff", "list", "--json", *city))
    assert {(m["id"], m["role"], m["active"]) for m in listed} == {
        ("op-j", "operator_junior", True),
        ("lead", "leader", True),
        ("qa", "qa_inspector", True),
        ("stat", "statistician", True),
    }
    engine = make_engine(city[-1])
    assert staff.authenticate(engine, "op-j", "correct horse battery") is not None

    registered = json.loads(
        ok(
            capsys,
            "city",
            "ticket",
            "register",
            "--as",
            "op-j",
            "--role",
            "operator_junior",
            "--kind",
            "complaint",
            "--category",
            "NET.BROADBAND",
            "--channel",
            "web",
            "--phone",
            "13800000001",
            "--name",
            "李四",
            "--tier",
            "ordinary",
            "--content",
            "宽带断网两天",
            "--then",
            "dispatch",
            "--branch",
            "城区营业部",
            "--json",
            *city,
        )
    )
    ticket_id = str(registered["id"])  # the number, as --id takes it back
    assert registered["status"] == "dispatched" and registered["branch"] == "城区营业部"
    for action in ("start", "branch_return", "close"):
        out = ok(
            capsys,
            "city",
            "ticket",
            "act",
            "--as",
            "op-j",
            "--id",
            ticket_id,
            "--action",
            action,
            "--note",
            f"{action} by cli",
            *city,
        )
        assert f"ticket {ticket_id}: {action} done" in out
    shown = json.loads(ok(capsys, "city", "ticket", "show", "--id", ticket_id, "--json", *city))
    assert shown["status"] == "closed" and shown["closed_by"] == "op-j"
    assert [h["action"] for h in shown["history"]] == [
        "register",
        "dispatch",
        "start",
        "branch_return",
        "close",
    ]
    assert shown["history"][-1]["note"] == "close by cli"
    assert "宽带断网两天" in ok(capsys, "city", "ticket", "show", "--id", ticket_id, *city)
    # The history reads in the asked language; Chinese by default.
    assert shown["history"][1]["code"] == "dispatched_to"
    assert shown["history"][1]["text"] == "派往 城区营业部"
    english = ok(capsys, "city", "ticket", "show", "--id", ticket_id, "--lang", "en", *city)
    assert "to 城区营业部" in english

    listed = json.loads(ok(capsys, "city", "ticket", "list", "--status", "closed", "--json", *city))
    assert [t["id"] for t in listed] == [int(ticket_id)]
    assert json.loads(ok(capsys, "city", "ticket", "list", "--open", "--json", *city)) == []

    # A report: drafted by the statistician, approved only by a leader, then queued.
    ctx = make_context(engine, CITY)
    day = ctx.today().isoformat()
    draft = ["city", "report", "draft", "--kind", "statistics", "--period", "day", "--start", day]
    code, _, err = run(capsys, *draft, "--as", "op-j", *city)
    assert code == 2 and "may not draft_report" in err
    # Another spelling of a day (Python reads 20261102 and 2026W483 as dates) is refused:
    # a leader would otherwise approve a period nobody typed.
    for spelling in (day.replace("-", ""), "2026W483"):
        code, _, err = run(capsys, *draft[:-1], spelling, "--as", "stat", *city)
        assert code == 2 and f"--start {spelling!r} is not a YYYY-MM-DD date" in err
    drafted = json.loads(
        ok(
            capsys,
            "city",
            "report",
            "draft",
            "--kind",
            "statistics",
            "--period",
            "day",
            "--start",
            day,
            "--as",
            "stat",
            "--json",
            *city,
        )
    )
    assert drafted["status"] == "draft" and drafted["figures"]["complaints_received"] == 1
    pending = json.loads(ok(capsys, "city", "report", "list", "--pending", "--json", *city))
    assert [r["id"] for r in pending] == [drafted["id"]]
    code, _, err = run(
        capsys, "city", "report", "approve", "--id", str(drafted["id"]), "--as", "op-j", *city
    )
    assert code == 2 and "only leader" in err
    out = ok(capsys, "city", "report", "approve", "--id", str(drafted["id"]), "--as", "lead", *city)
    assert "approved by lead" in out and "queued for the province" in out
    with engine.connect() as conn:
        kinds = list(conn.execute(select(OutboxRow.kind)).scalars())
    assert kinds == ["statistics_report"]
    assert json.loads(ok(capsys, "city", "report", "list", "--pending", "--json", *city)) == []

    drawn = json.loads(
        ok(capsys, "city", "qa", "draw", "--count", "1", "--as", "qa", "--json", *city)
    )
    assert len(drawn) == 1
    engine.dispose()

    # --then takes every follow-up the API and the console take (escalate_manager too).
    escalated = json.loads(
        ok(
            capsys,
            "city",
            "ticket",
            "register",
            "--as",
            "op-j",
            "--kind",
            "complaint",
            "--category",
            "NET.BROADBAND",
            "--phone",
            "13800000002",
            "--content",
            "不接受解释",
            "--then",
            "escalate_manager",
            "--note",
            "客户要求经理处理",
            "--json",
            *city,
        )
    )
    assert escalated["status"] == "escalated_manager"


def test_simulate_writes_history(capsys, city: list[str]):
    counts = json.loads(
        ok(capsys, "city", "simulate", "--days", "2", "--seed", "9", "--json", *city)
    )
    assert counts["tickets"] > 100 and counts["complaint"] > 0
    listed = json.loads(ok(capsys, "city", "ticket", "list", "--limit", "500", "--json", *city))
    assert len(listed) == min(500, counts["tickets"])


def test_suggestions_are_listed_classified_and_sent(capsys, monkeypatch, city: list[str]):
    add_staff(capsys, monkeypatch, city, "op-j", "operator_junior")
    add_staff(capsys, monkeypatch, city, "clerk", "materials_clerk")
    ids = []
    for kind in ("suggestion", "complaint"):
        registered = ok(
            capsys,
            "city",
            "ticket",
            "register",
            "--as",
            "op-j",
            "--kind",
            kind,
            "--category",
            "NET.BROADBAND",
            "--phone",
            "13800000001",
            "--content",
            f"a {kind}",
            "--json",
            *city,
        )
        ids.append(str(json.loads(registered)["id"]))
    idea, complaint = ids
    listed = json.loads(ok(capsys, "city", "suggestions", "list", "--json", *city))
    assert [(s["ticket_id"], s["label"]) for s in listed] == [(int(idea), None)]
    classify = ["city", "suggestions", "classify", "--as", "clerk", *city]
    refusals = [
        (["--id", idea, "--label", " "], "label"),
        (["--id", idea, "--label", "bad\x1b[2Jlabel"], "U+001B"),
        (["--id", complaint, "--label", "coverage"], "not a suggestion"),
        (["--id", "99", "--label", "coverage"], "ticket 99 does not exist"),
    ]
    for extra, message in refusals:
        code, _, err = run(capsys, *classify, *extra)
        assert code == 2 and message in err and "Traceback" not in err, (extra, err)
    code, _, err = run(capsys, *classify[:4], "op-j", *city, "--id", idea, "--label", "x")
    assert code == 2 and "materials_clerk" in err
    assert "[unclassified]" in ok(capsys, "city", "suggestions", "list", *city)

    done = json.loads(ok(capsys, *classify, "--id", idea, "--label", "coverage", "--json"))
    assert (done["label"], done["classified_by"]) == ("coverage", "clerk")
    waiting = ok(capsys, "city", "suggestions", "list", "--classified", *city)
    assert f"{idea} [coverage]" in waiting
    sent = json.loads(ok(capsys, "city", "suggestions", "send", "--as", "clerk", "--json", *city))
    assert sent["suggestions"] == 1
    assert ok(capsys, "city", "suggestions", "list", "--classified", *city).strip() == (
        "no suggestions waiting"
    )
    code, _, err = run(capsys, *classify, "--id", idea, "--label", "tariff")
    assert code == 2 and "already sent" in err


def test_inbox_shows_titles_safely_and_receipt_takes_as(capsys, monkeypatch, city: list[str]):
    add_staff(capsys, monkeypatch, city, "lead", "leader")
    notice = pb.Notice(seq=4, kind=pb.TASK, title="clear\x1b[2Jscreen", body="b")
    notice.created_at.GetCurrentTime()
    engine = make_engine(city[-1])
    city_services.accept_notice(engine, notice)
    engine.dispose()
    shown = ok(capsys, "city", "inbox", *city)
    assert "clear\\x1b[2Jscreen" in shown and "\x1b" not in shown
    header, line = shown.splitlines()[:2]
    assert header.split()[:3] == ["ref", "seq", "kind"]
    ref = line.split()[0]
    assert re.fullmatch(r"N-[0-9]{8}-1", ref) and line.split()[1] == "4", line
    queued = ok(
        capsys, "city", "receipt", "--notice", "4", "--action", "read", "--as", "lead", *city
    )
    assert "receipt queued" in queued
    assert " R " in ok(capsys, "city", "inbox", *city)
    # The reference the inbox shows names the notice too.
    done = ["city", "receipt", "--notice", ref, "--action", "done", "--as", "lead", *city]
    assert "receipt queued" in ok(capsys, *done)
    assert " RD " in ok(capsys, "city", "inbox", *city)
    for bad, said in (
        (ref[:-1] + "9", "no such notice"),
        ("N-2026-1", "not a notice reference"),
        ("N-20261301-1", "'N-20261301-1' names no day (20261301 is not a date YYYYMMDD)"),
        ("N-99991231-1", "'N-99991231-1' names no day"),  # past the end of the calendar
    ):
        code, _, err = run(capsys, *done[:3], bad, *done[4:])
        assert code == 2 and said in err and "Traceback" not in err, err


def test_bad_input_exits_2_with_a_message(capsys, monkeypatch, city: list[str]):
    add_staff(capsys, monkeypatch, city, "op-j", "operator_junior")
    add_staff(capsys, monkeypatch, city, "gone", "leader")
    staff.set_active(make_engine(city[-1]), "gone", False)
    register = [
        "city",
        "ticket",
        "register",
        "--kind",
        "complaint",
        "--phone",
        "13800000001",
        "--content",
        "x",
        *city,
    ]
    cases = [
        ([*register, "--as", "nobody", "--category", "NET.BROADBAND"], "no such staff member"),
        ([*register, "--as", "gone", "--category", "NET.BROADBAND"], "inactive"),
        ([*register, "--as", "op-j", "--role", "leader", "--category", "BILL"], "operator_junior"),
        ([*register, "--as", "op-j", "--category", "NOPE"], "'NOPE'"),
        (["city", "ticket", "show", "--id", "abc", *city], "'abc' is not a number"),
        (["city", "ticket", "show", "--id", "99", *city], "ticket 99 does not exist"),
        (
            ["city", "ticket", "act", "--as", "op-j", "--id", "99", "--action", "fly", *city],
            "action 'fly'",
        ),
        (
            [
                "city",
                "report",
                "draft",
                "--kind",
                "qa",
                "--period",
                "week",
                "--start",
                "monday",
                "--as",
                "op-j",
                *city,
            ],
            "'monday' is not a YYYY-MM-DD",
        ),
        (["city", "report", "approve", "--id", "7", "--as", "gone", *city], "inactive"),
        (["city", "simulate", "--days", "0", *city], "--days 0"),
        (["city", "simulate", "--days", "1", "--scale", "nan", *city], "scale must be above 0"),
        (["city", "simulate", "--days", "1", "--scale", "-1", *city], "scale must be above 0"),
        # Refused before a ticket is written (it wrote 1753's tickets, then failed on a report).
        (["city", "simulate", "--days", "100000", *city], "days 100000: the history would"),
        (
            [
                "city",
                "staff",
                "add",
                "--id",
                "x y",
                "--name",
                "X Y",
                "--role",
                "leader",
                "--password-stdin",
                *city,
            ],
            "staff id 'x y'",
        ),
    ]
    act = ["city", "ticket", "act", "--as", "op-j"]
    cases.append(
        (
            [*register, "--as", "op-j", "--category", "NET.BROADBAND", "--branch", "B1"],
            "branch is only for then=dispatch",
        )
    )
    cases.append(
        (
            [*act, "--id", "1", "--action", "chase", "--days", "3", *city],
            "days is only for action=request_extension",
        )
    )
    # The steps of a ticket are offered, not the console's other actions.
    steps = "is not one of: answer, dispatch, hand_to_senior, start, branch_return, close, survey"
    for action in ("fly", "compensate", "manage_staff"):
        cases.append(([*act, "--id", "1", "--action", action, *city], steps))
    cases.append(([*act, "--id", "1", "--action", "survey", *city], "outcome is required: one of"))
    # Text no person types is refused as the console refuses it, naming the field; bytes that
    # are not UTF-8 (a lone surrogate in argv) before anything is opened.
    ok_ticket = [r for r in register if r not in ("--content", "x")]
    ok_ticket += ["--as", "op-j", "--category", "NET.BROADBAND"]
    for text, message in (
        ("clear \x1b[2J screen", "content: contains a control character (U+001B)"),
        ("bell \x07", "content: contains a control character (U+0007)"),
        ("bad \udcff byte", "is not valid UTF-8 text"),
    ):
        cases.append(([*ok_ticket, "--content", text], message))
    add = ["city", "staff", "add", "--id", "op-x", "--role", "leader", "--password-stdin"]
    for name, why in (("", "empty"), ("   ", "empty"), ("王\x1b[2J", "U+001B"), ("a\nb", "U+000A")):
        cases.append(([*add, "--name", name, *city], "name: "))
        cases.append(([*add, "--name", name, *city], why))
    # An empty filter is no filter asked: refused, not "list everything".
    cases.append((["city", "ticket", "list", "--status", "", *city], "--status: empty"))
    for argv, message in cases:
        monkeypatch.setattr("sys.stdin", io.StringIO("long-enough-pw\n"))
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert message in err and "Traceback" not in err, (argv, err)
    # Nothing on standard input is said as such, not as a password too short.
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(capsys, *add, "--name", "王", *city)
    assert code == 2 and "standard input gave no password" in err, err
    assert "op-x" not in ok(capsys, "city", "staff", "list", *city)
    assert ok(capsys, "city", "ticket", "list", *city).strip() == "no tickets match"
    # An option given twice is refused by argparse, naming it, not the last value taken.
    for argv, flag in (
        ([*ok_ticket, "--content", "a", "--content", "b"], "--content"),
        (["city", "ticket", "show", "--id", "1", "--id", "2", *city], "--id"),
        (["city", *city, "--code", OTHER, "status"], "--code"),
        # Once before the sub-command and once after it: the same option.
        (["city", *city, "status", "--database-url", "sqlite:///other.sqlite"], "--database-url"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert f"argument {flag}: given twice" in capsys.readouterr().err, argv
    # Before a service is even reached, argparse names the missing flag (exit 2 as well).
    with pytest.raises(SystemExit) as exc:
        main(["city", "ticket", "act", "--id", "1", *city])
    assert exc.value.code == 2
    assert "--as" in capsys.readouterr().err
    # A count out of range is refused naming the flag, not clamped (or, for the inbox, passed
    # to the database as a negative LIMIT).
    for argv, flag in (
        (["city", "ticket", "list", "--limit", "0"], "--limit: 0: give 1 to 500"),
        (["city", "ticket", "list", "--limit", "-5"], "--limit: -5: give 1 to 500"),
        (["city", "report", "list", "--limit", "501"], "--limit: 501: give 1 to 500"),
        (["city", "inbox", "--limit", "-1"], "--limit: -1: give 1 to 1000"),
        (["city", "suggestions", "list", "--limit", "many"], "--limit: 'many' is not"),
    ):
        with pytest.raises(SystemExit) as exc:
            main([*argv, *city])
        assert exc.value.code == 2
        assert flag in capsys.readouterr().err, argv


def _escalate_at_city(tmp_path: Path) -> tuple[str, list[pb.Envelope], Any]:
    """A city escalates a complaint to the province; returns its ticket id and envelopes."""
    engine = make_engine(f"sqlite:///{tmp_path / 'escalating-city.sqlite'}")
    create_schema(engine)
    city_services.open_store(engine, CITY)
    ctx = make_context(engine, CITY)
    junior, manager = Actor("op-j", Role.OPERATOR_JUNIOR), Actor("mgr", Role.MANAGER_HOTLINE)
    new = tickets.NewTicket(
        "complaint", "BILL.DISPUTE", "phone", "13900000002", "王五", "ordinary", "话费争议"
    )
    ticket = tickets.register(ctx, junior, new, then=Action.ESCALATE_MANAGER, note="拒绝")
    ticket_steps.act(ctx, manager, ticket.id, "escalate_province", note="客户要求省公司处理")
    with engine.connect() as conn:
        rows = conn.execute(select(OutboxRow.envelope).order_by(OutboxRow.seq)).scalars()
        envelopes = [pb.Envelope.FromString(r) for r in rows]
    return str(ticket.id), envelopes, ctx  # the hub knows the city's id as the wire's text


def test_hub_resolve_and_trace_reach_that_city_only(capsys, tmp_path: Path):
    hub_db = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    hub = ["--database-url", hub_db]
    assert "hub store at revision h" in ok(capsys, "hub", "migrate", *hub)
    ticket_id, envelopes, ctx = _escalate_at_city(tmp_path)
    hub_engine = make_engine(hub_db)
    hub_services.ingest_batch(
        hub_engine, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )

    # A resolution for a ticket the city never escalated is refused (a typo, most likely).
    code, _, err = run(
        capsys,
        "hub",
        "resolve",
        "--city",
        CITY,
        "--ticket",
        "4242",
        "--resolution",
        "refund",
        "--outcome",
        "upheld",
        *hub,
    )
    assert code == 2 and "no escalation of ticket 4242" in err
    code, _, err = run(
        capsys,
        "hub",
        "resolve",
        "--city",
        "999999",
        "--ticket",
        ticket_id,
        "--resolution",
        "refund",
        "--outcome",
        "upheld",
        *hub,
    )
    assert code == 2 and "'999999'" in err

    # --by names a hub account of the GM hotline (the web's rule for resolving).
    from province_hub import staff as hub_staff

    hub_staff.add_staff(
        hub_engine, staff_id="gm-2", name="热线", role="gm_hotline", password="x" * 12
    )
    sent = json.loads(
        ok(
            capsys,
            "hub",
            "resolve",
            "--city",
            CITY,
            "--ticket",
            ticket_id,
            "--resolution",
            "退还一个月月租",
            "--outcome",
            "partly_upheld",
            "--by",
            "gm-2",
            "--json",
            *hub,
        )
    )
    traced = json.loads(
        ok(
            capsys,
            "hub",
            "trace",
            "--city",
            CITY,
            "--ticket",
            ticket_id,
            "--gm-hotline",
            "--json",
            *hub,
        )
    )
    assert sent["city"] == traced["city"] == CITY

    notices = [
        pb.Notice.FromString(raw)
        for raw in hub_services.notices_after(hub_engine, city_code=CITY, after_seq=0)
    ]
    assert [n.seq for n in notices] == [sent["seq"], traced["seq"]]
    resolution, trace = notices
    assert resolution.kind == pb.ESCALATION_RESOLUTION and list(resolution.targets) == [CITY]
    escalation = envelopes[-1]  # named as the hub holds it (epoch and digest)
    assert resolution.escalation_resolution == pb.EscalationResolution(
        ticket_id=ticket_id,
        escalation_seq=escalation.seq,
        resolution="退还一个月月租",
        resolved_by="gm-2",
        escalation_epoch=escalation.epoch,
        escalation_digest=escalation.content_digest,
    )
    assert trace.kind == pb.TRACE_REQUEST and list(trace.targets) == [CITY]
    assert trace.trace_request == pb.TraceRequest(
        ticket_id=ticket_id,
        from_gm_hotline=True,
        escalation_seq=escalation.seq,
        escalation_epoch=escalation.epoch,
        escalation_digest=escalation.content_digest,
    )
    assert hub_services.notices_after(hub_engine, city_code=OTHER, after_seq=0) == []

    # Delivered to the city, the resolution closes the loop on the ticket.
    city_services.accept_notice(ctx.engine, resolution)
    assert tickets.get(ctx, int(ticket_id)).status is Status.RETURNED
    hub_engine.dispose()


def test_status_shows_the_last_error_only_while_the_link_is_down(
    capsys: pytest.CaptureFixture[str], city: list[str]
) -> None:
    from sync.outbox import Outbox, initialise

    engine = make_engine(city[3])
    create_schema(engine)
    with engine.begin() as conn:
        initialise(conn, CITY)
    outbox = Outbox(engine)
    outbox.set_state("backing-off", error="ConnectionRefusedError: hub unreachable")
    down = json.loads(ok(capsys, "city", "status", "--json", *city))
    assert (down["state"], down["last_event"]) == ("never", "backing-off")
    assert down["last_error"] == "ConnectionRefusedError: hub unreachable"
    assert down["last_error_at"].endswith("+08:00")  # the federation's zone, as elsewhere
    # Connected again: the old error is history, as on the console's link page.
    outbox.set_state("connected", last_contact_at=datetime.now(UTC))
    up = json.loads(ok(capsys, "city", "status", "--json", *city))
    assert up["state"] == "connected" and up["last_error"] == "" and up["last_error_at"] is None
    assert up["silent_since"] is None
    # A node stopped (or a hub gone) a while ago: its last event is still "connected", but
    # the link is silent since its last contact, three heartbeats (30 s) on.
    contact = datetime.now(UTC) - timedelta(seconds=45)
    outbox.set_state("connected", last_contact_at=contact)
    stopped = json.loads(ok(capsys, "city", "status", "--json", *city))
    assert (stopped["state"], stopped["last_event"]) == ("silent", "connected")
    assert datetime.fromisoformat(stopped["silent_since"]) == contact
    text = ok(capsys, "city", "status", *city)
    assert "state                silent" in text and "last_event           connected" in text
    # A node whose heartbeat is a minute apart is not silent after 45 s.
    slow = json.loads(ok(capsys, "city", "--heartbeat-seconds", "60", "status", "--json", *city))
    assert slow["state"] == "connected"
    engine.dispose()
