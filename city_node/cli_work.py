"""``fedsync city …`` work commands: staff, tickets, reports, QA, suggestions, simulator; and
the settings, store and staff-member helpers every city command uses.

These commands act on the city store directly, as the named staff member: every one goes
through the same services as the console (roles, history, outbox), so a person can work
the store from a shell when the console is not at hand. Heavier modules are imported inside
the command that needs them, so other commands do not pay for them.
"""

from __future__ import annotations

import argparse
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from city_node.context import Actor, CityContext
from city_node.settings import CitySettings
from sync.commands import (
    SubParsers,
    close_when_done,
    creates_store,
    filter_value,
    leaf,
    password_flag,
    print_data,
    print_staff,
    read_password,
    tier_settings,
    whole_in,
)
from sync.config import ConfigError, add_arguments
from sync.limits import terminal_safe
from sync.periods import iso_date
from sync.vocabulary import PeriodKind, ReportKind

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from city_node.reports import ReportView
    from city_node.views import TicketDetail


def city_settings(args: argparse.Namespace) -> CitySettings:
    return tier_settings(CitySettings, args, section="city")


def city_engine(args: argparse.Namespace) -> Engine:
    """The city store named by the settings, migrated, closed when the command is done."""
    from city_node.app import open_engine

    engine = open_engine(city_settings(args))
    close_when_done(args, engine.dispose)
    return engine


def city_context(args: argparse.Namespace) -> CityContext:
    from city_node.app import context_for

    # The same calendar, categories and rules as the running node.
    return context_for(city_settings(args), city_engine(args))


def staff_actor(
    ctx: CityContext, staff_id: str, role: str | None = None, flag: str = "--as"
) -> Actor:
    """The Actor for ``--as``: a known, active staff member, in their own role (``--role``,
    when given, must be that role) — history and reports name real people."""
    from city_node import staff

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


@creates_store
def _city_migrate(args: argparse.Namespace) -> int:
    from city_node.store import create_schema
    from sync.db import make_engine

    engine = make_engine(city_settings(args).database_url)
    try:
        revision = create_schema(engine)
    finally:
        engine.dispose()
    print(f"city store at revision {revision}")
    return 0


def _staff_manager(args: argparse.Namespace, engine: Engine) -> Actor | None:
    """Who manages the account: ``--as`` (a leader, as in the console), else the node's
    administrator at the shell (who holds the store itself)."""
    if not args.actor_id:
        return None
    from city_node.app import context_for

    return staff_actor(context_for(city_settings(args), engine), args.actor_id)


def _staff_change(args: argparse.Namespace) -> int:
    from city_node import staff

    engine = city_engine(args)
    by = _staff_manager(args, engine)
    if args._staff == "disable":
        member = staff.disable(engine, args.id, by=by)
        print(f"staff {member.id} disabled; their console sessions end")
    elif args._staff == "enable":
        member = staff.enable(engine, args.id, by=by)
        print(f"staff {member.id} enabled")
    elif args._staff == "reset-password":
        staff.reset_password(engine, args.id, read_password(args), by=by)
        print(f"staff {args.id}: password reset")
    else:
        before = staff.get(engine, args.id)
        member = staff.set_role(engine, args.id, args.role, by=by)
        if before is not None and before.session_generation == member.session_generation:
            print(f"staff {member.id} is {member.role.value} already: nothing changed")
        else:
            print(f"staff {member.id} is now {member.role.value}; their console sessions end")
    return 0


@creates_store
def _staff_add(args: argparse.Namespace) -> int:
    from city_node import staff

    password = read_password(args)
    member = staff.add(
        city_engine(args), staff_id=args.id, name=args.name, role=args.role, password=password
    )
    print(f"staff {member.id} ({member.name}) added as {member.role.value}")
    return 0


def _staff_list(args: argparse.Namespace) -> int:
    from city_node import staff

    members = staff.all_staff(city_engine(args))
    print_staff(args, members, role_width=16, empty="no staff yet")
    return 0


def _ticket_json(detail: TicketDetail) -> dict[str, Any]:
    """The API's ticket, for ``--json``: what the caller may do next is a signed-in
    caller's question (the console's, not the shell's), so that is left out."""
    return detail.model_dump(exclude={"allowed_actions"})


def _show_ticket(args: argparse.Namespace, ctx: CityContext, ticket_id: int, text: str) -> None:
    from city_node.views import ticket_detail

    if args.json:
        print_data(args, _ticket_json(ticket_detail(ctx, ticket_id, None, args.lang)), "")
    else:
        print(text)


def _ticket_text(ticket: TicketDetail, zone: tzinfo) -> str:
    from sync.zones import zone_label

    def local(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else "-"

    flags = [f for f in ("is_repeat", "overtime") if getattr(ticket, f)]
    lines = [
        f"ticket {ticket.id}: {ticket.kind} {ticket.category} via {ticket.channel}, "
        f"{ticket.tier} customer {ticket.customer_name} {ticket.customer_phone}",
        f"status {ticket.status}, deadline {local(ticket.deadline)}"
        + (f" [{', '.join(flags)}]" if flags else ""),
        f"  {ticket.content}",
        f"  (times in {zone_label(getattr(zone, 'key', str(zone)))})",
    ]
    for h in ticket.history:
        note = f" — {h.text}" if h.text else ""
        lines.append(f"  {local(h.at)} {h.actor:<14} {h.action:<18}{note}")
    return terminal_safe("\n".join(lines))


def _ticket_register(args: argparse.Namespace) -> int:
    from city_node import tickets
    from city_node.domain import Action
    from city_node.tickets import NewTicket

    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor_id, args.role)
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
    _show_ticket(args, ctx, ticket.id, f"ticket {ticket.id} registered: {ticket.status.value}")
    return 0


def _ticket_act(args: argparse.Namespace) -> int:
    from city_node import commands, tickets

    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor_id, args.role)
    ticket_id = tickets.parse_ticket_id(args.id)
    command = commands.command_of(args)
    ticket = tickets.perform(ctx, actor, ticket_id, command)
    done = f"ticket {ticket.id}: {args.action} done, now {ticket.status.value}"
    _show_ticket(args, ctx, ticket.id, done)
    return 0


def _ticket_show(args: argparse.Namespace) -> int:
    from city_node.tickets import parse_ticket_id
    from city_node.views import ticket_detail

    ctx = city_context(args)
    detail = ticket_detail(ctx, parse_ticket_id(args.id), None, args.lang)
    print_data(args, _ticket_json(detail), _ticket_text(detail, ctx.zone))
    return 0


def _ticket_list(args: argparse.Namespace) -> int:
    from city_node import tickets
    from city_node.views import ticket_summary

    ctx = city_context(args)
    rows = tickets.search(
        ctx,
        status=filter_value(args.status, "--status"),
        kind=filter_value(args.kind, "--kind"),
        open_only=args.open,
        overtime_only=args.overtime,
        extension_pending=args.extension_pending,
        limit=args.limit,
    )
    data = [ticket_summary(r).model_dump() for r in rows]
    lines = [
        f"{r.id:>7} {r.kind:<12} {r.status:<18} {r.category:<14} {r.tier:<11} "
        f"{r.registered_at.astimezone(ctx.zone):%Y-%m-%d %H:%M}  due "
        f"{r.deadline.astimezone(ctx.zone):%Y-%m-%d %H:%M}  {r.operator or '-'}"
        for r in rows
    ]
    print_data(args, data, "\n".join(lines) or "no tickets match")
    return 0


def _report_json(view: ReportView) -> dict[str, Any]:
    """The API's report, for ``--json``."""
    from city_node.views import report_out

    return report_out(view).model_dump()


def _report_line(view: ReportView) -> str:
    return (
        f"report {view.id}: {view.kind} {view.period_kind} {view.period_start} "
        f"rev {view.revision} — {view.status}"
        + (f" by {view.decided_by}" if view.decided_by else f" (drafted by {view.drafted_by})")
        + (" — refused by the hub: see the inbox" if view.hub_rejection else "")
    )


def _report_draft(args: argparse.Namespace) -> int:
    from city_node import reports

    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor_id)
    try:
        start = iso_date(args.start)
    except ValueError:
        raise ConfigError(f"--start {args.start!r} is not a YYYY-MM-DD date") from None
    view = reports.draft(ctx, args.kind, args.period, start, by=actor.id, role=actor.role)
    print_data(args, _report_json(view), _report_line(view))
    return 0


def _report_list(args: argparse.Namespace) -> int:
    from city_node import reports

    ctx = city_context(args)
    views = reports.pending(ctx) if args.pending else reports.recent(ctx, args.limit)
    text = "\n".join(_report_line(v) for v in views) or "no reports"
    print_data(args, [_report_json(v) for v in views], text)
    return 0


def _report_decide(args: argparse.Namespace) -> int:
    from city_node import reports

    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor_id)
    if args.decision == "approve":
        view = reports.approve(ctx, actor, args.id, note=args.note)
    else:
        view = reports.reject(ctx, actor, args.id, note=args.note)
    suffix = f", queued for the province as seq {view.outbox_seq}" if view.outbox_seq else ""
    print_data(args, _report_json(view), _report_line(view) + suffix)
    return 0


def _qa_draw(args: argparse.Namespace) -> int:
    from city_node import domain, qa

    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor_id)
    domain.check_may(actor.role, domain.Action.SCORE_QA)
    ids = qa.draw(
        ctx,
        count=args.count,
        rate=args.rate,
        how="random" if args.count or args.rate else "scheduled",
        inspector=actor.id,
    )
    drawn = f"{len(ids)} sample{'' if len(ids) == 1 else 's'} drawn"
    print_data(args, ids, f"{drawn}: {', '.join(map(str, ids)) or '-'}")
    return 0


def _suggestions_send(args: argparse.Namespace) -> int:
    from city_node import suggestions

    ctx = city_context(args)
    sent = suggestions.send_batch(ctx, staff_actor(ctx, args.actor_id))
    data = {"outbox_seq": sent[0], "suggestions": sent[1]} if sent else None
    text = f"batch of {sent[1]} suggestions queued as seq {sent[0]}" if sent else "nothing to send"
    print_data(args, data, text)
    return 0


def _suggestion_line(view: Any) -> str:
    label = f"[{view.label}]" if view.label else "[unclassified]"
    return f"{view.ticket_id:>7} {label} {view.category}: {view.content}"


def _suggestions_list(args: argparse.Namespace) -> int:
    from city_node import suggestions

    ctx = city_context(args)
    views = suggestions.worklist(ctx, classified=args.classified, limit=args.limit)
    data = [vars(v) for v in views]
    text = "\n".join(_suggestion_line(v) for v in views) or "no suggestions waiting"
    print_data(args, data, text)
    return 0


def _suggestions_classify(args: argparse.Namespace) -> int:
    from city_node import suggestions, tickets

    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor_id)
    ticket_id = tickets.parse_ticket_id(args.id)
    suggestions.classify(ctx, actor, ticket_id, args.label)
    view = suggestions.get(ctx, ticket_id)
    print_data(args, vars(view), f"classified: {_suggestion_line(view)}")
    return 0


def _city_simulate(args: argparse.Namespace) -> int:
    from city_node import simulator

    if args.days < 1:
        raise ConfigError(f"--days {args.days}: simulate 1 day or more")
    counts = simulator.backfill(
        city_context(args), days=args.days, seed=args.seed, scale=args.scale
    )
    text = f"{counts.get('tickets', 0)} tickets over {args.days} days: " + ", ".join(
        f"{k} {v}" for k, v in counts.items() if k != "tickets"
    )
    print_data(args, counts, text)
    return 0


# --- parser --------------------------------------------------------------------------------


def _add_as(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--as",
        dest="actor_id",
        required=True,
        metavar="STAFF_ID",
        help=f"the staff member who {what} (must exist and be active)",
    )


def add_work_commands(city_sub: SubParsers) -> None:
    """The city's work from a shell: staff, tickets, reports, QA, suggestions, simulator."""
    from city_node.domain import (
        STAFF_ROLES,
        Channel,
        CustomerTier,
        FollowUp,
        Satisfaction,
        TicketKind,
    )
    from sync.web.i18n import DEFAULT_LANG, LANGS

    leaves: list[argparse.ArgumentParser] = []
    leaves.append(
        leaf(city_sub, "migrate", _city_migrate, "bring the store to the latest schema revision")
    )

    staff_sub = city_sub.add_parser("staff", help="staff accounts").add_subparsers(
        dest="_staff", required=True, metavar="[add|list|disable|enable|reset-password|set-role]"
    )
    add = leaf(staff_sub, "add", _staff_add, "create a staff account")
    add.add_argument("--id", required=True, help="sign-in id: 2-64 letters, digits, . _ -")
    add.add_argument("--name", required=True, help="the person's name (shown in lists and history)")
    add.add_argument("--role", required=True, choices=[r.value for r in STAFF_ROLES])
    password_flag(add)
    leaves += [add, leaf(staff_sub, "list", _staff_list, "list staff accounts", json_out=True)]
    changes = {
        "disable": "stop an account from signing in (its sessions end)",
        "enable": "let a disabled account sign in again",
        "reset-password": "give an account a new password (its sessions end)",
        "set-role": "move an account to another role (its sessions end)",
    }
    for name, what in changes.items():
        change = leaf(staff_sub, name, _staff_change, what)
        change.add_argument("--id", required=True, help="the account's sign-in id")
        change.add_argument(
            "--as",
            dest="actor_id",
            metavar="STAFF_ID",
            help="the leader who acts, held to the console's rules (default: the node's "
            "administrator, who holds the store)",
        )
        if name == "set-role":
            change.add_argument("--role", required=True, choices=[r.value for r in STAFF_ROLES])
        if name == "reset-password":
            password_flag(change)
        leaves.append(change)

    ticket_sub = city_sub.add_parser("ticket", help="register, work, show and list tickets")
    tsub = ticket_sub.add_subparsers(
        dest="_ticket", required=True, metavar="[register|act|show|list]"
    )
    reg = leaf(tsub, "register", _ticket_register, "take a ticket in", json_out=True)
    _add_as(reg, "takes it in")
    reg.add_argument("--role", help="the role acted in (default: the staff member's role)")
    reg.add_argument("--kind", required=True, choices=[k.value for k in TicketKind])
    reg.add_argument(
        "--category",
        required=True,
        help="category code of the tree, e.g. NET.BROADBAND (a top-level one such as NET "
        "when none finer fits)",
    )
    reg.add_argument("--channel", default="phone", choices=[c.value for c in Channel])
    reg.add_argument("--phone", required=True, help="the customer's phone number")
    reg.add_argument("--name", default="", help="the customer's name")
    reg.add_argument("--tier", default="ordinary", choices=[t.value for t in CustomerTier])
    reg.add_argument("--content", required=True, help="what the customer said")
    reg.add_argument(
        "--then",
        choices=[a.value for a in FollowUp],
        help="the operator's follow-up in the same step",
    )
    reg.add_argument("--branch", default="", help="branch to dispatch to (with --then dispatch)")
    reg.add_argument("--note", default="", help="note for the history")
    act = leaf(tsub, "act", _ticket_act, "perform an action on a ticket", json_out=True)
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
    show = leaf(tsub, "show", _ticket_show, "a ticket with its whole history", json_out=True)
    show.add_argument("--id", required=True, help="the ticket id")
    lst = leaf(tsub, "list", _ticket_list, "tickets, newest first", json_out=True)
    lst.add_argument("--status", help="only this status")
    lst.add_argument("--kind", choices=[k.value for k in TicketKind], help="only this kind")
    lst.add_argument("--open", action="store_true", help="only open tickets")
    lst.add_argument("--overtime", action="store_true", help="only open tickets past deadline")
    lst.add_argument(
        "--extension-pending",
        action="store_true",
        help="only tickets whose extension request waits for the leader",
    )
    lst.add_argument("--limit", type=whole_in(1, 500), default=50, help="at most this many, 1-500")
    for leaf_parser in (reg, act, show):
        leaf_parser.add_argument(
            "--lang",
            choices=LANGS,
            default=DEFAULT_LANG,
            help="language the history is shown in (default: %(default)s)",
        )
    leaves += [reg, act, show, lst]

    report_sub = city_sub.add_parser("report", help="draft, list, approve and reject reports")
    rsub = report_sub.add_subparsers(
        dest="_report", required=True, metavar="[draft|list|approve|reject]"
    )
    draft = leaf(rsub, "draft", _report_draft, "draft a report for a period", json_out=True)
    draft.add_argument("--kind", required=True, choices=[k.value for k in ReportKind])
    draft.add_argument("--period", required=True, choices=[k.value for k in PeriodKind])
    draft.add_argument("--start", required=True, help="first day of the period, YYYY-MM-DD")
    _add_as(draft, "drafts it")
    rlist = leaf(rsub, "list", _report_list, "the latest reports", json_out=True)
    rlist.add_argument("--pending", action="store_true", help="only drafts awaiting the leader")
    rlist.add_argument(
        "--limit", type=whole_in(1, 500), default=50, help="at most this many, 1-500"
    )
    leaves += [draft, rlist]
    for decision, text in (
        ("approve", "approve a draft: it is queued for the province"),
        ("reject", "send a draft back (--note says why)"),
    ):
        decide = leaf(rsub, decision, _report_decide, text, json_out=True)
        decide.set_defaults(decision=decision)
        decide.add_argument("--id", required=True, type=int, help="the report id")
        _add_as(decide, "decides (a center leader)")
        decide.add_argument("--note", default="", help="the leader's note (reason to reject)")
        leaves.append(decide)

    qa_sub = city_sub.add_parser("qa", help="QA sampling").add_subparsers(
        dest="_qa", required=True, metavar="[draw]"
    )
    draw = leaf(qa_sub, "draw", _qa_draw, "draw closed tickets for QA", json_out=True)
    size = draw.add_mutually_exclusive_group()
    size.add_argument("--count", type=int, help="this many samples (a random spot check)")
    size.add_argument("--rate", type=float, help="this share of closed, unsampled tickets")
    _add_as(draw, "inspects (a QA inspector)")
    leaves.append(draw)

    sug_sub = city_sub.add_parser(
        "suggestions", help="classify suggestions, send them in batches"
    ).add_subparsers(dest="_suggestions", required=True, metavar="[list|classify|send]")
    slist = leaf(
        sug_sub, "list", _suggestions_list, "suggestions not yet sent, oldest first", json_out=True
    )
    slist.add_argument(
        "--classified", action="store_true", help="those classified and waiting for the batch"
    )
    slist.add_argument(
        "--limit", type=whole_in(1, 1000), default=100, help="at most this many, 1-1000"
    )
    classify = leaf(
        sug_sub, "classify", _suggestions_classify, "give a suggestion its class", json_out=True
    )
    classify.add_argument("--id", required=True, help="the suggestion ticket's id")
    classify.add_argument("--label", required=True, help="the class, 1-64 characters")
    _add_as(classify, "classifies it (a materials clerk)")
    send = leaf(sug_sub, "send", _suggestions_send, "send classified suggestions up", json_out=True)
    _add_as(send, "sends them (a materials clerk)")
    leaves += [slist, classify, send]

    sim = leaf(
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
    for sub in leaves:
        add_arguments(sub, CitySettings, nested=True)
