"""The ``fedsync`` command: ``hub``, ``city``, ``pki`` and ``demo``.

This is the only module that knows both tiers, and it imports each lazily inside the
subcommand that needs it, so ``city_node`` and ``province_hub`` never import each other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sync.config import ConfigError, add_arguments, resolve

Handler = Callable[[argparse.Namespace], int]


def _settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(args).items() if not k.startswith("_")}


# --- hub -----------------------------------------------------------------------------------


def _hub_settings(args: argparse.Namespace) -> Any:
    from province_hub.settings import HubSettings

    return resolve(HubSettings, flags=_settings_flags(args), section="hub")


def _hub_run(args: argparse.Namespace) -> int:
    from province_hub.app import serve

    asyncio.run(serve(_hub_settings(args)))
    return 0


def _hub_engine(args: argparse.Namespace) -> tuple[Any, Any]:
    from province_hub.store import create_schema
    from sync.db import make_engine
    from sync.roster import load_roster

    settings = _hub_settings(args)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    return engine, tuple(c.code for c in load_roster(settings.roster))


def _hub_status(args: argparse.Namespace) -> int:
    from province_hub.status import format_table, link_status

    engine, roster = _hub_engine(args)
    rows = link_status(engine, roster)
    print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json else format_table(rows))
    return 0


def _hub_notice(args: argparse.Namespace) -> int:
    from province_hub import services
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    engine, roster = _hub_engine(args)
    kind = args.kind.upper().replace("-", "_")
    if kind not in pb.NoticeKind.keys() or kind == "NOTICE_KIND_UNSPECIFIED":  # noqa: SIM118
        raise ConfigError(f"--kind {args.kind!r}: use announcement, task, standard-answer, finding")
    notice = pb.Notice(
        kind=pb.NoticeKind.Value(kind),
        priority=pb.Priority.Value(args.priority.upper()),
        title=args.title,
        body=args.body,
        sender=args.sender,
        targets=[c.strip() for c in args.to.split(",") if c.strip()] if args.to != "all" else [],
    )
    if args.deadline:
        try:
            deadline = datetime.fromisoformat(args.deadline)
        except ValueError:
            raise ConfigError(f"--deadline {args.deadline!r} is not an ISO date-time") from None
        notice.task_deadline.FromDatetime(
            deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
        )
    try:
        sent = services.send_notice(engine, notice=notice, roster_codes=roster)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"notice {sent.seq} sent to {len(sent.targets) or len(roster)} cities")
    return 0


# --- city ----------------------------------------------------------------------------------


def _city_settings(args: argparse.Namespace) -> Any:
    from city_node.settings import CitySettings

    return resolve(CitySettings, flags=_settings_flags(args), section="city")


def _city_run(args: argparse.Namespace) -> int:
    from city_node.app import serve

    asyncio.run(serve(_city_settings(args)))
    return 0


def _city_engine(args: argparse.Namespace) -> Any:
    from city_node.app import open_engine

    return open_engine(_city_settings(args))


def _city_status(args: argparse.Namespace) -> int:
    from sync.outbox import Outbox

    snapshot = Outbox(_city_engine(args)).snapshot()
    data = {
        "city_code": snapshot.city_code,
        "state": snapshot.state,
        "epoch": snapshot.epoch,
        "last_seq": snapshot.last_seq,
        "delivered_seq": snapshot.delivered_seq,
        "backlog": snapshot.backlog,
        "oldest_unsent_age_s": int(snapshot.oldest_unsent_age().total_seconds()),
        "hub_acked_seq": snapshot.hub_acked_seq,
        "notice_cursor": snapshot.notice_cursor,
        "last_push": snapshot.last_push_at.isoformat() if snapshot.last_push_at else None,
        "last_error": snapshot.last_error,
        "last_rejection": snapshot.last_rejection,
    }
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:<20} {value}")
    return 0


def _city_inbox(args: argparse.Namespace) -> int:
    from city_node import services

    for row in services.inbox(_city_engine(args), limit=args.limit):
        marks = "".join(
            flag
            for flag, at in (("R", row.read_at), ("D", row.done_at), ("O", row.objection_at))
            if at
        )
        print(f"{row.notice_seq:>6} {row.kind:<22} {row.priority:<7} {marks:<3} {row.title}")
    return 0


def _city_receipt(args: argparse.Namespace) -> int:
    from city_node import services
    from city_node.context import CityError

    # The receipt names a real, active staff member, as the console's do.
    ctx = _city_context(args)
    actor = _staff_actor(ctx, args.actor, flag="--actor")
    try:
        seq = services.record_receipt(
            ctx.engine,
            notice_seq=args.notice,
            action=args.action,
            actor=actor.id,
            note=args.note,
        )
    except CityError as exc:
        raise ConfigError(str(exc)) from None
    print(f"receipt queued as seq {seq}")
    return 0


def _city_rebase(args: argparse.Namespace) -> int:
    from city_node.services import follow_rebase
    from sync.link import make_channel, rebase_against_hub
    from sync.outbox import Outbox
    from sync.pki import load_city_tls

    settings = _city_settings(args)
    outbox = Outbox(_city_engine(args))
    snapshot = outbox.snapshot()

    async def run(apply: bool) -> Any:
        channel = make_channel(
            settings.hub,
            load_city_tls(settings.pki_dir, settings.code),
            server_name=settings.hub_server_name,
        )
        async with channel:
            return await rebase_against_hub(outbox, channel, apply=apply, on_renumber=follow_rebase)

    outcome = asyncio.run(run(apply=bool(args.yes)))
    plan = outcome.plan
    print(
        f"hub holds seqs up to {outcome.hub_acked_seq} (epoch {outcome.hub_epoch or '-'}); this "
        f"store has assigned up to {snapshot.last_seq}, delivered {snapshot.delivered_seq} "
        f"(epoch {snapshot.epoch})"
    )
    print(
        f"{plan.already_held} envelopes the hub already holds at their seq, "
        f"{plan.held_elsewhere} it holds under another seq, {plan.renumbered} it does not hold"
    )
    if not args.yes:
        print(
            "re-run with --yes to start a new epoch after the hub's high-water mark: what the "
            "hub holds counts as delivered, the rest is renumbered"
        )
        return 1
    print(
        f"re-based: new epoch {plan.epoch}; {plan.renumbered} envelopes renumbered from "
        f"{outcome.hub_acked_seq + 1}; {plan.already_held + plan.held_elsewhere} already held "
        "by the hub, not sent again"
    )
    return 0


# --- city work: staff, tickets, reports, QA, suggestions, simulator ------------------------
#
# These commands act on the city store directly, as the named staff member: every one goes
# through the same services as the console (roles, history, outbox), so a person can work
# the store from a shell when the console is not at hand.


def _city_context(args: argparse.Namespace) -> Any:
    from city_node.app import context_for

    # The same calendar, categories and rules as the running node.
    return context_for(_city_settings(args), _city_engine(args))


def _staff_actor(ctx: Any, staff_id: str, role: str | None = None, flag: str = "--as") -> Any:
    """The Actor for ``--as``: a known, active staff member, in their own role (``--role``,
    when given, must be that role) — history and reports name real people."""
    from city_node import staff
    from city_node.context import Actor

    member = staff.get(ctx.engine, staff_id)
    if member is None:
        raise ConfigError(
            f"{flag} {staff_id!r}: no such staff member (see `fedsync city staff list`)"
        )
    if not member.active:
        raise ConfigError(f"{flag} {staff_id!r}: the account is inactive")
    if role and role != member.role.value:
        raise ConfigError(
            f"--role {role}: staff member {staff_id} has the role {member.role.value}"
        )
    return Actor(member.id, member.role)


def _when(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _print_data(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=_when) if args.json else text)


def _city_migrate(args: argparse.Namespace) -> int:
    from city_node.store import create_schema
    from sync.db import make_engine

    engine = make_engine(_city_settings(args).database_url)
    try:
        revision = create_schema(engine)
    finally:
        engine.dispose()
    print(f"city store at revision {revision}")
    return 0


def _hub_migrate(args: argparse.Namespace) -> int:
    from province_hub.store import create_schema
    from sync.db import make_engine

    engine = make_engine(_hub_settings(args).database_url)
    try:
        revision = create_schema(engine)
    finally:
        engine.dispose()
    print(f"hub store at revision {revision}")
    return 0


def _staff_add(args: argparse.Namespace) -> int:
    from city_node import staff

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        password = args.password
    else:
        raise ConfigError("give the password with --password-stdin (or --password)")
    member = staff.add(
        _city_engine(args), staff_id=args.id, name=args.name, role=args.role, password=password
    )
    print(f"staff {member.id} ({member.name}) added as {member.role.value}")
    return 0


def _staff_list(args: argparse.Namespace) -> int:
    from city_node import staff

    members = staff.all_staff(_city_engine(args))
    data = [{"id": m.id, "name": m.name, "role": m.role.value, "active": m.active} for m in members]
    lines = [
        f"{m.id:<20} {m.role.value:<16} {'active' if m.active else 'inactive':<8} {m.name}"
        for m in members
    ]
    _print_data(args, data, "\n".join(lines) or "no staff yet")
    return 0


def _ticket_data(ctx: Any, ticket_id: Any) -> dict[str, Any]:
    from city_node import tickets

    ticket, extras = tickets.get(ctx, ticket_id)
    data = {
        "id": ticket.id,
        "kind": ticket.kind.value,
        "status": ticket.status.value,
        "category": ticket.category,
        "channel": ticket.channel.value,
        "tier": ticket.tier.value,
        "customer_phone": ticket.customer_phone,
        "customer_name": ticket.customer_name,
        "content": ticket.content,
        "registered_at": ticket.registered_at,
        "deadline": ticket.deadline,
        "operator": ticket.operator,
        "branch": ticket.branch,
        "closed_at": ticket.closed_at,
        "satisfaction": ticket.satisfaction.value if ticket.satisfaction else None,
        "reopen_count": ticket.reopen_count,
        "chase_count": ticket.chase_count,
        **extras,
        "history": [
            {
                "at": h.at,
                "actor": h.actor,
                "role": h.role.value,
                "action": h.action.value,
                "note": h.note,
                "from_status": h.from_status.value if h.from_status else None,
                "to_status": h.to_status.value if h.to_status else None,
            }
            for h in tickets.history(ctx, ticket.id)
        ],
    }
    return data


def _ticket_text(data: dict[str, Any], zone: Any) -> str:
    def local(value: Any) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "-"

    flags = [f for f in ("is_repeat", "overtime") if data.get(f)]
    lines = [
        f"ticket {data['id']}: {data['kind']} {data['category']} via {data['channel']}, "
        f"{data['tier']} customer {data['customer_name']} {data['customer_phone']}",
        f"status {data['status']}, deadline {local(data['deadline'])}"
        + (f" [{', '.join(flags)}]" if flags else ""),
        f"  {data['content']}",
    ]
    for h in data["history"]:
        note = f" — {h['note']}" if h["note"] else ""
        lines.append(f"  {local(h['at'])} {h['actor']:<14} {h['action']:<18}{note}")
    return "\n".join(lines)


def _ticket_register(args: argparse.Namespace) -> int:
    from city_node import tickets
    from city_node.domain import Action
    from city_node.tickets import NewTicket

    ctx = _city_context(args)
    actor = _staff_actor(ctx, args.actor_id, args.role)
    ticket = tickets.register(
        ctx,
        actor,
        NewTicket(
            kind=args.kind,
            category=args.category,
            channel=args.channel,
            customer_phone=args.phone,
            customer_name=args.name,
            tier=args.tier,
            content=args.content,
        ),
        then=Action(args.then) if args.then else None,
        branch=args.branch,
        note=args.note,
    )
    data = _ticket_data(ctx, ticket.id)
    _print_data(args, data, f"ticket {ticket.id} registered: {ticket.status.value}")
    return 0


def _ticket_act(args: argparse.Namespace) -> int:
    from city_node import tickets

    ctx = _city_context(args)
    actor = _staff_actor(ctx, args.actor_id, args.role)
    params: dict[str, Any] = {"note": args.note}
    for name in ("branch", "outcome", "days", "reason"):
        value = getattr(args, name)
        if value is not None:
            params[name] = value
    if args.reopen:
        params["reopen"] = True
    ticket = tickets.act(ctx, actor, args.id, args.action, **params)
    data = _ticket_data(ctx, ticket.id)
    _print_data(args, data, f"ticket {ticket.id}: {args.action} done, now {ticket.status.value}")
    return 0


def _ticket_show(args: argparse.Namespace) -> int:
    ctx = _city_context(args)
    data = _ticket_data(ctx, args.id)
    _print_data(args, data, _ticket_text(data, ctx.zone))
    return 0


def _ticket_list(args: argparse.Namespace) -> int:
    from city_node import tickets

    ctx = _city_context(args)
    rows = tickets.search(
        ctx,
        status=args.status,
        kind=args.kind,
        open_only=args.open,
        overtime_only=args.overtime,
        limit=args.limit,
    )
    columns = ("id", "kind", "status", "category", "channel", "tier", "operator", "is_repeat")
    data = [
        {
            **{c: getattr(r, c) for c in columns},
            "registered_at": r.registered_at,
            "deadline": r.deadline,
            "closed_at": r.closed_at,
        }
        for r in rows
    ]
    lines = [
        f"{r.id:>7} {r.kind:<12} {r.status:<18} {r.category:<14} {r.tier:<11} "
        f"{r.registered_at.astimezone(ctx.zone):%Y-%m-%d %H:%M}  due "
        f"{r.deadline.astimezone(ctx.zone):%Y-%m-%d %H:%M}  {r.operator or '-'}"
        for r in rows
    ]
    _print_data(args, data, "\n".join(lines) or "no tickets match")
    return 0


def _report_data(view: Any) -> dict[str, Any]:
    return {
        "id": view.id,
        "kind": view.kind,
        "period_kind": view.period_kind,
        "period_start": view.period_start,
        "revision": view.revision,
        "status": view.status,
        "drafted_at": view.drafted_at,
        "drafted_by": view.drafted_by,
        "decided_at": view.decided_at,
        "decided_by": view.decided_by,
        "decision_note": view.decision_note,
        "outbox_seq": view.outbox_seq,
        "figures": view.figures,
    }


def _report_line(view: Any) -> str:
    return (
        f"report {view.id}: {view.kind} {view.period_kind} {view.period_start} "
        f"rev {view.revision} — {view.status}"
        + (f" by {view.decided_by}" if view.decided_by else f" (drafted by {view.drafted_by})")
    )


def _report_draft(args: argparse.Namespace) -> int:
    from city_node import reports

    ctx = _city_context(args)
    actor = _staff_actor(ctx, args.actor_id)
    try:
        start = date.fromisoformat(args.start)
    except ValueError:
        raise ConfigError(f"--start {args.start!r} is not a YYYY-MM-DD date") from None
    view = reports.draft(ctx, args.kind, args.period, start, by=actor.id, role=actor.role)
    _print_data(args, _report_data(view), _report_line(view))
    return 0


def _report_list(args: argparse.Namespace) -> int:
    from city_node import reports

    ctx = _city_context(args)
    views = reports.pending(ctx) if args.pending else reports.recent(ctx, args.limit)
    text = "\n".join(_report_line(v) for v in views) or "no reports"
    _print_data(args, [_report_data(v) for v in views], text)
    return 0


def _report_decide(args: argparse.Namespace) -> int:
    from city_node import reports

    ctx = _city_context(args)
    actor = _staff_actor(ctx, args.actor_id)
    if args.decision == "approve":
        view = reports.approve(ctx, actor, args.id, note=args.note)
    else:
        view = reports.reject(ctx, actor, args.id, note=args.note)
    suffix = f", queued for the province as seq {view.outbox_seq}" if view.outbox_seq else ""
    _print_data(args, _report_data(view), _report_line(view) + suffix)
    return 0


def _qa_draw(args: argparse.Namespace) -> int:
    from city_node import domain, qa

    ctx = _city_context(args)
    actor = _staff_actor(ctx, args.actor_id)
    domain.check_may(actor.role, domain.Action.SCORE_QA)
    ids = qa.draw(
        ctx,
        count=args.count,
        rate=args.rate,
        how="random" if args.count or args.rate else "scheduled",
        inspector=actor.id,
    )
    _print_data(args, ids, f"{len(ids)} samples drawn: {', '.join(map(str, ids)) or '-'}")
    return 0


def _suggestions_send(args: argparse.Namespace) -> int:
    from city_node import suggestions

    ctx = _city_context(args)
    sent = suggestions.send_batch(ctx, _staff_actor(ctx, args.actor_id))
    data = {"outbox_seq": sent[0], "suggestions": sent[1]} if sent else None
    text = f"batch of {sent[1]} suggestions queued as seq {sent[0]}" if sent else "nothing to send"
    _print_data(args, data, text)
    return 0


def _city_simulate(args: argparse.Namespace) -> int:
    from city_node import simulator

    if args.days < 1:
        raise ConfigError(f"--days {args.days}: simulate 1 day or more")
    counts = simulator.backfill(
        _city_context(args), days=args.days, seed=args.seed, scale=args.scale
    )
    text = f"{counts.get('tickets', 0)} tickets over {args.days} days: " + ", ".join(
        f"{k} {v}" for k, v in counts.items() if k != "tickets"
    )
    _print_data(args, counts, text)
    return 0


# --- hub: escalation resolutions and trace requests -----------------------------------------


def _send_to_city(args: argparse.Namespace, engine: Any, notice: Any, roster: Sequence[str]) -> int:
    from province_hub import services

    try:
        sent = services.send_notice(engine, notice=notice, roster_codes=roster)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    data = {"seq": sent.seq, "city": args.city, "ticket_id": args.ticket, "title": sent.title}
    _print_data(args, data, f"notice {sent.seq} sent to city {args.city}: {sent.title}")
    return 0


def _hub_target(args: argparse.Namespace) -> tuple[Any, tuple[str, ...]]:
    engine, roster = _hub_engine(args)
    if args.city not in roster:
        raise ConfigError(f"--city {args.city!r} is not a city of the roster")
    if not args.ticket.strip():
        raise ConfigError("--ticket: give the city's ticket id")
    return engine, roster


def _hub_resolve(args: argparse.Namespace) -> int:
    from province_hub import services
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    engine, roster = _hub_target(args)
    if not args.resolution.strip():
        raise ConfigError("--resolution: say how the province resolved the complaint")
    seq = services.escalation_seq(engine, args.city, args.ticket)
    if seq is None and not args.force:
        raise ConfigError(
            f"city {args.city} has sent no escalation of ticket {args.ticket} to this hub "
            "(check the ticket id, or --force to send the resolution anyway)"
        )
    notice = pb.Notice(
        kind=pb.ESCALATION_RESOLUTION,
        priority=pb.HIGH,
        title=f"Escalation of ticket {args.ticket} resolved",
        body=args.resolution,
        sender=args.by,
        targets=[args.city],
        escalation_resolution=pb.EscalationResolution(
            ticket_id=args.ticket,
            escalation_seq=seq or 0,
            resolution=args.resolution,
            resolved_by=args.by,
        ),
    )
    return _send_to_city(args, engine, notice, roster)


def _hub_trace(args: argparse.Namespace) -> int:
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    engine, roster = _hub_target(args)
    notice = pb.Notice(
        kind=pb.TRACE_REQUEST,
        priority=pb.NORMAL,
        title=f"Trace request: ticket {args.ticket}",
        body="Send the ticket's history.",
        sender=args.by,
        targets=[args.city],
        trace_request=pb.TraceRequest(ticket_id=args.ticket, from_gm_hotline=args.gm_hotline),
    )
    return _send_to_city(args, engine, notice, roster)


# --- pki -----------------------------------------------------------------------------------


def _pki_init(args: argparse.Namespace) -> int:
    from sync import pki
    from sync.roster import load_roster

    codes = [c.code for c in load_roster(args.roster)]
    pki.init_pki(
        args.dir,
        city_codes=codes,
        hub_hosts=args.hub_host or ("localhost", "127.0.0.1"),
        overwrite=args.overwrite,
    )
    print(f"CA, hub and {len(codes)} city certificates written to {args.dir}")
    return 0


def _pki_issue(args: argparse.Namespace) -> int:
    from sync import pki

    if args.city:
        crt, _ = pki.issue_city(args.dir, args.city)
    else:
        crt, _ = pki.issue_hub(args.dir, hosts=args.hub_host or ("localhost", "127.0.0.1"))
    print(f"issued {crt}")
    return 0


def _pki_revoke(args: argparse.Namespace) -> int:
    from sync import pki

    serial = pki.revoke(args.dir, code=args.city, serial=args.serial, reason=args.reason)
    print(f"revoked serial {serial}; the hub refuses it within a second")
    return 0


# --- demo ----------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from sync.demo import run_demo

    return run_demo(duration=args.duration, cities=args.cities, workdir=args.workdir)


# --- parser --------------------------------------------------------------------------------


def _leaf(
    parent: Any, name: str, handler: Handler, help_text: str, *, json_out: bool = False
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
    parser.set_defaults(_handler=handler)
    if json_out:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _add_as(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--as",
        dest="actor_id",
        required=True,
        metavar="STAFF_ID",
        help=f"the staff member who {what} (must exist and be active)",
    )


def _add_city_work(city_sub: Any, settings_cls: type) -> None:
    """The city's work from a shell: staff, tickets, reports, QA, suggestions, simulator."""
    from city_node.domain import (
        STAFF_ROLES,
        Action,
        Channel,
        CustomerTier,
        Satisfaction,
        TicketKind,
    )

    leaves: list[argparse.ArgumentParser] = []
    leaves.append(
        _leaf(city_sub, "migrate", _city_migrate, "bring the store to the latest schema revision")
    )

    staff_sub = city_sub.add_parser("staff", help="staff accounts").add_subparsers(
        dest="_staff", required=True, metavar="[add|list]"
    )
    add = _leaf(staff_sub, "add", _staff_add, "create a staff account")
    add.add_argument("--id", required=True, help="sign-in id: 2-64 letters, digits, . _ -")
    add.add_argument("--name", default="", help="the person's name")
    add.add_argument("--role", required=True, choices=[r.value for r in STAFF_ROLES])
    secret = add.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    secret.add_argument(
        "--password", help="the password (visible in the process list: prefer --password-stdin)"
    )
    leaves += [add, _leaf(staff_sub, "list", _staff_list, "list staff accounts", json_out=True)]

    ticket_sub = city_sub.add_parser("ticket", help="register, work, show and list tickets")
    tsub = ticket_sub.add_subparsers(
        dest="_ticket", required=True, metavar="[register|act|show|list]"
    )
    reg = _leaf(tsub, "register", _ticket_register, "take a ticket in", json_out=True)
    _add_as(reg, "takes it in")
    reg.add_argument("--role", help="the role acted in (default: the staff member's role)")
    reg.add_argument("--kind", required=True, choices=[k.value for k in TicketKind])
    reg.add_argument("--category", required=True, help="leaf category code, e.g. NET.BROADBAND")
    reg.add_argument("--channel", default="phone", choices=[c.value for c in Channel])
    reg.add_argument("--phone", required=True, help="the customer's phone number")
    reg.add_argument("--name", default="", help="the customer's name")
    reg.add_argument("--tier", default="ordinary", choices=[t.value for t in CustomerTier])
    reg.add_argument("--content", required=True, help="what the customer said")
    reg.add_argument(
        "--then",
        choices=[Action.ANSWER.value, Action.DISPATCH.value, Action.HAND_TO_SENIOR.value],
        help="the operator's follow-up in the same step",
    )
    reg.add_argument("--branch", default="", help="branch to dispatch to (with --then dispatch)")
    reg.add_argument("--note", default="", help="note for the history")
    act = _leaf(tsub, "act", _ticket_act, "perform an action on a ticket", json_out=True)
    _add_as(act, "acts")
    act.add_argument("--role", help="the role acted in (default: the staff member's role)")
    act.add_argument("--id", required=True, help="the ticket id")
    act.add_argument("--action", required=True, help="dispatch, start, branch_return, close, …")
    act.add_argument("--note", default="", help="note (required to escalate)")
    act.add_argument("--branch", help="branch (dispatch)")
    act.add_argument("--outcome", choices=[s.value for s in Satisfaction], help="(survey)")
    act.add_argument(
        "--reopen", action="store_true", help="(survey, dissatisfied) reopen the ticket"
    )
    act.add_argument("--days", type=int, help="working days asked for (request_extension)")
    act.add_argument("--reason", help="why more days are needed (request_extension)")
    show = _leaf(tsub, "show", _ticket_show, "a ticket with its whole history", json_out=True)
    show.add_argument("--id", required=True, help="the ticket id")
    lst = _leaf(tsub, "list", _ticket_list, "tickets, newest first", json_out=True)
    lst.add_argument("--status", help="only this status")
    lst.add_argument("--kind", choices=[k.value for k in TicketKind], help="only this kind")
    lst.add_argument("--open", action="store_true", help="only open tickets")
    lst.add_argument("--overtime", action="store_true", help="only open tickets past deadline")
    lst.add_argument("--limit", type=int, default=50, help="at most this many (max 500)")
    leaves += [reg, act, show, lst]

    report_sub = city_sub.add_parser("report", help="draft, list, approve and reject reports")
    rsub = report_sub.add_subparsers(
        dest="_report", required=True, metavar="[draft|list|approve|reject]"
    )
    draft = _leaf(rsub, "draft", _report_draft, "draft a report for a period", json_out=True)
    draft.add_argument("--kind", required=True, choices=["statistics", "qa", "overtime"])
    draft.add_argument(
        "--period", required=True, choices=["day", "week", "month", "quarter", "year"]
    )
    draft.add_argument("--start", required=True, help="first day of the period, YYYY-MM-DD")
    _add_as(draft, "drafts it")
    rlist = _leaf(rsub, "list", _report_list, "the latest reports", json_out=True)
    rlist.add_argument("--pending", action="store_true", help="only drafts awaiting the leader")
    rlist.add_argument("--limit", type=int, default=50)
    leaves += [draft, rlist]
    for decision, text in (
        ("approve", "approve a draft: it is queued for the province"),
        ("reject", "send a draft back (--note says why)"),
    ):
        decide = _leaf(rsub, decision, _report_decide, text, json_out=True)
        decide.set_defaults(decision=decision)
        decide.add_argument("--id", required=True, type=int, help="the report id")
        _add_as(decide, "decides (a center leader)")
        decide.add_argument("--note", default="", help="the leader's note (reason to reject)")
        leaves.append(decide)

    qa_sub = city_sub.add_parser("qa", help="QA sampling").add_subparsers(
        dest="_qa", required=True, metavar="[draw]"
    )
    draw = _leaf(qa_sub, "draw", _qa_draw, "draw closed tickets for QA", json_out=True)
    size = draw.add_mutually_exclusive_group()
    size.add_argument("--count", type=int, help="this many samples (a random spot check)")
    size.add_argument("--rate", type=float, help="this share of closed, unsampled tickets")
    _add_as(draw, "inspects (a QA inspector)")
    leaves.append(draw)

    sug_sub = city_sub.add_parser("suggestions", help="suggestion batches").add_subparsers(
        dest="_suggestions", required=True, metavar="[send]"
    )
    send = _leaf(
        sug_sub, "send", _suggestions_send, "send classified suggestions up", json_out=True
    )
    _add_as(send, "sends them (a materials clerk)")
    leaves.append(send)

    sim = _leaf(
        city_sub,
        "simulate",
        _city_simulate,
        "write N days of simulated history into the store (demo and test stores only)",
        json_out=True,
    )
    sim.add_argument("--days", type=int, required=True, help="how many days back")
    sim.add_argument("--seed", default="0", help="the same seed gives the same history")
    sim.add_argument("--scale", type=float, default=1.0, help="volume relative to the default")
    leaves.append(sim)
    for leaf in leaves:
        add_arguments(leaf, settings_cls, nested=True)


def build_parser() -> argparse.ArgumentParser:
    from city_node.settings import CitySettings
    from province_hub.settings import HubSettings

    parser = argparse.ArgumentParser(
        prog="fedsync", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    tiers = parser.add_subparsers(dest="_command", required=True, metavar="COMMAND")

    hub = tiers.add_parser("hub", help="the province hub: run it, see link status, send notices")
    add_arguments(hub, HubSettings)
    hub.set_defaults(_handler=_hub_run)
    hub_sub = hub.add_subparsers(dest="_sub", metavar="[run|status|notice|migrate|resolve|trace]")
    hub_run = hub_sub.add_parser("run", help="run the hub (the default)")
    hub_run.set_defaults(_handler=_hub_run)
    status = hub_sub.add_parser("status", help="per city: link state, acked seq, records, backlog")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(_handler=_hub_status)
    notice = hub_sub.add_parser("notice", help="send a notice to all or some cities")
    notice.add_argument("--title", required=True)
    notice.add_argument("--body", default="")
    notice.add_argument(
        "--kind",
        default="announcement",
        help="announcement, task, standard-answer, finding, reminder",
    )
    notice.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    notice.add_argument("--to", default="all", help="'all' or comma-separated city codes")
    notice.add_argument("--deadline", default="", help="ISO date-time a TASK must be done by")
    notice.add_argument("--sender", default="announcer")
    notice.set_defaults(_handler=_hub_notice)
    hub_migrate = hub_sub.add_parser(
        "migrate", help="bring the hub store to the latest schema revision and print it"
    )
    hub_migrate.set_defaults(_handler=_hub_migrate)
    resolve = hub_sub.add_parser(
        "resolve",
        help="send a city the province's resolution of a complaint it escalated",
        description="Sends an ESCALATION_RESOLUTION notice to that one city; the city node "
        "applies it to the ticket (returned for the callback) when the notice arrives.",
    )
    resolve.add_argument("--city", required=True, help="the city that escalated (its code)")
    resolve.add_argument("--ticket", required=True, help="the city's ticket id")
    resolve.add_argument("--resolution", required=True, help="what the province decided/did")
    resolve.add_argument("--by", default="gm-hotline", help="who resolved it (province staff)")
    resolve.add_argument(
        "--force", action="store_true", help="send even if the hub holds no such escalation"
    )
    resolve.add_argument("--json", action="store_true", help="machine-readable output")
    resolve.set_defaults(_handler=_hub_resolve)
    trace = hub_sub.add_parser(
        "trace",
        help="ask a city for one ticket's history",
        description="Sends a TRACE_REQUEST notice to that one city; the node answers with a "
        "TicketTrace (the customer's phone masked unless --gm-hotline).",
    )
    trace.add_argument("--city", required=True, help="the city's code")
    trace.add_argument("--ticket", required=True, help="the city's ticket id")
    trace.add_argument(
        "--gm-hotline",
        action="store_true",
        help="asked by the general-manager hotline: the answer may carry the unmasked phone",
    )
    trace.add_argument("--by", default="supervisor", help="who asks (province staff)")
    trace.add_argument("--json", action="store_true", help="machine-readable output")
    trace.set_defaults(_handler=_hub_trace)
    for sub in (hub_run, status, notice, hub_migrate, resolve, trace):
        add_arguments(sub, HubSettings, nested=True)
    from province_hub.figures_cli import add_figures_command

    add_figures_command(hub_sub)

    city = tiers.add_parser("city", help="a city node: run it, see its link, work its inbox")
    add_arguments(city, CitySettings)
    city.set_defaults(_handler=_city_run)
    city_sub = city.add_subparsers(
        dest="_sub",
        metavar="[run|status|inbox|receipt|rebase|migrate|staff|ticket|report|qa|suggestions|simulate]",
    )
    city_run = city_sub.add_parser("run", help="run the node (the default)")
    city_run.set_defaults(_handler=_city_run)
    cstatus = city_sub.add_parser("status", help="link state, backlog, last push, conflicts")
    cstatus.add_argument("--json", action="store_true")
    cstatus.set_defaults(_handler=_city_status)
    cinbox = city_sub.add_parser("inbox", help="the latest province notices")
    cinbox.add_argument("--limit", type=int, default=50)
    cinbox.set_defaults(_handler=_city_inbox)
    receipt = city_sub.add_parser("receipt", help="mark a notice read, done or objected to")
    receipt.add_argument("--notice", type=int, required=True, help="the notice's seq")
    receipt.add_argument("--action", required=True, choices=["read", "done", "objection"])
    receipt.add_argument("--note", default="", help="what was done / the objection's reason")
    receipt.add_argument("--actor", required=True, help="staff id of who acts")
    receipt.set_defaults(_handler=_city_receipt)
    rebase = city_sub.add_parser(
        "rebase", help="after a sequence conflict: continue after the hub's mark"
    )
    rebase.add_argument("--yes", action="store_true", help="really re-base (otherwise only show)")
    rebase.set_defaults(_handler=_city_rebase)
    for sub in (city_run, cstatus, cinbox, receipt, rebase):
        add_arguments(sub, CitySettings, nested=True)
    _add_city_work(city_sub, CitySettings)

    pki = tiers.add_parser("pki", help="the province CA and node certificates")
    pki_sub = pki.add_subparsers(dest="_sub", required=True, metavar="[init|issue|revoke]")
    init = pki_sub.add_parser(
        "init", help="create the CA, the hub's and every roster city's certificate"
    )
    init.add_argument("--dir", type=Path, required=True)
    init.add_argument("--roster", type=Path, default=None, help="roster CSV; default: Gansu")
    init.add_argument("--hub-host", action="append", help="DNS name or IP of the hub (repeatable)")
    init.add_argument("--overwrite", action="store_true", help="replace an existing CA")
    init.set_defaults(_handler=_pki_init)
    issue = pki_sub.add_parser("issue", help="(re-)issue one node's certificate")
    issue.add_argument("--dir", type=Path, required=True)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--city", help="city code")
    who.add_argument("--hub", action="store_true", help="the hub")
    issue.add_argument("--hub-host", action="append", help="DNS name or IP of the hub (repeatable)")
    issue.set_defaults(_handler=_pki_issue)
    revoke = pki_sub.add_parser("revoke", help="revoke a city's certificate (the hub refuses it)")
    revoke.add_argument("--dir", type=Path, required=True)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--city", help="city code (its current certificate)")
    which.add_argument("--serial", type=int, help="a certificate serial")
    revoke.add_argument("--reason", default="unspecified")
    revoke.set_defaults(_handler=_pki_revoke)

    demo = tiers.add_parser("demo", help="the whole federation on this machine (Ctrl-C stops it)")
    demo.add_argument("--cities", type=int, default=14, help="how many roster cities to start")
    demo.add_argument(
        "--duration", type=float, default=0, help="stop after N seconds (0: until Ctrl-C)"
    )
    demo.add_argument(
        "--workdir", type=Path, default=None, help="keep PKI and stores here (default: temp dir)"
    )
    demo.set_defaults(_handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args._handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"fedsync: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the message of a known failure is enough for a person
        from sync.outbox import OutboxError
        from sync.pki import PkiError
        from sync.roster import RosterError

        if isinstance(exc, PkiError | RosterError | OutboxError):
            print(f"fedsync: error: {exc}", file=sys.stderr)
            return 2
        if args._command == "city":
            # A refusal of the city's rules (bad input, role, transition): the message says
            # what is wrong.
            from city_node.context import CityError
            from city_node.domain import DomainError

            if isinstance(exc, CityError | DomainError):
                print(f"fedsync: error: {exc}", file=sys.stderr)
                return 2
        raise


if __name__ == "__main__":
    raise SystemExit(main())
