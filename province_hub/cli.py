"""``fedsync hub …``: run the hub, see its links, send notices, resolve escalations, ask
for traces.

Registered with ``fedsync`` through the ``fedsync.tiers`` entry point (see
:mod:`sync.commands`). The heavier modules are imported inside the command that needs them,
so ``fedsync pki …`` and ``fedsync city …`` do not pay for the hub's server stack.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from province_hub.settings import HubSettings
from sync.backup import add_restore_options
from sync.commands import (
    SubParsers,
    close_when_done,
    creates_store,
    filter_value,
    password_flag,
    print_data,
    print_staff,
    read_password,
    refusals,
    tier_settings,
)
from sync.config import ConfigError, add_arguments

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sync.pb.fedsync.v1 import federation_pb2 as pb


def _hub_settings(args: argparse.Namespace) -> HubSettings:
    return tier_settings(HubSettings, args, section="hub")


@creates_store
def _hub_run(args: argparse.Namespace) -> int:
    from province_hub.app import serve

    asyncio.run(serve(_hub_settings(args)))
    return 0


def _hub_engine(args: argparse.Namespace) -> tuple[Engine, tuple[str, ...]]:
    from province_hub.store import create_schema
    from sync.db import make_engine
    from sync.roster import load_roster

    settings = _hub_settings(args)
    engine = make_engine(settings.database_url)
    close_when_done(args, engine.dispose)
    create_schema(engine)
    return engine, tuple(c.code for c in load_roster(settings.roster))


def _hub_status(args: argparse.Namespace) -> int:
    from province_hub.status import format_table, link_status
    from sync.zones import in_zone

    settings = _hub_settings(args)
    engine, roster = _hub_engine(args)
    rows = link_status(engine, roster, silent_after=timedelta(seconds=settings.link_silent_seconds))
    # On the clock the table, the web and the API use (the federation's zone); a city's text
    # from before its heartbeats were made safe is escaped as it is printed.
    print_data(
        args, in_zone(rows, ZoneInfo(settings.timezone)), format_table(rows, settings.timezone)
    )
    return 0


def _notice_kind(value: str) -> str:
    """The stored name of a notice kind given as ``announcement``, ``standard-answer``…"""
    from sync.pb.fedsync.v1 import federation_pb2 as pb

    kind = value.upper().replace("-", "_")
    kinds = [k for k in pb.NoticeKind.keys() if k != "NOTICE_KIND_UNSPECIFIED"]  # noqa: SIM118
    if kind not in kinds:
        named = ", ".join(k.lower().replace("_", "-") for k in kinds)
        raise ConfigError(f"--kind {value!r}: use one of {named}")
    return kind


def _hub_notices(args: argparse.Namespace) -> int:
    from province_hub.status import format_progress, notice_progress

    engine, _ = _hub_engine(args)
    kind = filter_value(args.kind, "--kind")
    rows = notice_progress(engine, kind=_notice_kind(kind) if kind is not None else None)
    print_data(args, rows, format_progress(rows))
    return 0


def _hub_notice(args: argparse.Namespace) -> int:
    from province_hub import notices
    from province_hub.audit import CLI_ADDRESS
    from province_hub.staff import HubRole

    kind = args.kind.strip().lower().replace("-", "_")
    if kind not in notices.SENDERS:  # the kinds a person composes; the hub writes the rest
        named = ", ".join(k.replace("_", "-") for k in notices.SENDERS)
        raise ConfigError(f"--kind {args.kind!r}: use one of {named}")
    engine, roster = _hub_engine(args)
    actor, role = _acting(
        engine,
        "--sender",
        args.sender,
        "notices.compose",
        roles=notices.SENDERS[kind],
        what=f"send a {kind.replace('_', '-')} notice",
    )
    deadline = None
    if args.deadline:
        try:
            deadline = notices.read_deadline(args.deadline, ZoneInfo(_hub_settings(args).timezone))
        except ValueError:
            raise ConfigError(f"--deadline {args.deadline!r} is not an ISO date-time") from None
    # Every city only when the shell says so: "--to all" is the web's second step.
    if args.to is None:
        raise ConfigError("--to: name the cities (comma-separated codes), or 'all' for every city")
    to = ",".join(args.to)  # --to 620100 --to 620200: both
    targets = tuple(c.strip() for c in to.split(",") if c.strip())
    if to.strip() != "all" and not targets:
        raise ConfigError(f"--to {to!r}: name the cities (comma-separated codes) or 'all'")
    if "all" in targets and len(targets) > 1:
        raise ConfigError(f"--to {to!r}: 'all' names every city; give it alone, or the codes")
    draft = notices.Draft(
        kind=kind,
        title=args.title,
        body=args.body,
        priority=args.priority,
        targets=targets if to.strip() != "all" else (),
        deadline=deadline,
        category=args.category,
        question=args.question,
        answer=args.answer,
        version=args.version,
        key=args.key,
        about_city=args.about_city,
        source=args.source,
    )
    categories = None
    if kind == "standard_answer":
        from sync.categories import CategoryTree

        categories = CategoryTree.load(_hub_settings(args).categories)
    try:
        # The web's service function; at the hub's shell "--to all" is the confirmation.
        sent = notices.send(
            engine,
            draft,
            roster_codes=roster,
            actor=actor,
            role=HubRole(role) if role else None,
            address=CLI_ADDRESS,
            confirm_all=True,
            categories=categories,
        )
    except notices.NoticeForbidden as exc:
        # The kind is not this sender's to send: name the flag, as for an unknown sender.
        who = f"--sender {args.sender!r} is a {role}: " if args.sender is not None else ""
        raise ConfigError(f"{who}{exc}") from None
    except notices.NoticeError as exc:
        raise ConfigError(str(exc)) from None
    count = len(sent.targets) or len(roster)
    print(f"notice {sent.seq} sent to {count} {'city' if count == 1 else 'cities'}")
    return 0


@creates_store
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


def _hub_backup(args: argparse.Namespace) -> int:
    from sync.backup import backup_command

    return backup_command("hub store", _hub_settings(args).database_url, args.to)


@creates_store
def _hub_restore(args: argparse.Namespace) -> int:
    from sync.backup import restore_command

    return restore_command("hub store", _hub_settings(args).database_url, args.source, yes=args.yes)


# --- escalation resolutions and trace requests ----------------------------------------------


def _one_city(args: argparse.Namespace) -> tuple[Engine, tuple[str, ...]]:
    # The service checks the same; checked here first to name the flag.
    engine, roster = _hub_engine(args)
    if args.city not in roster:
        raise ConfigError(f"--city {args.city!r} is not a city of the roster")
    if not args.ticket.strip():
        raise ConfigError("--ticket: give the city's ticket id")
    return engine, roster


def _print_sent(args: argparse.Namespace, sent: pb.Notice) -> int:
    data = {"seq": sent.seq, "city": args.city, "ticket_id": args.ticket, "title": sent.title}
    print_data(args, data, f"notice {sent.seq} sent to city {args.city}: {sent.title}")
    return 0


def _hub_resolve(args: argparse.Namespace) -> int:
    from province_hub import desk

    engine, roster = _one_city(args)
    if not args.resolution.strip():
        raise ConfigError("--resolution: say how the province resolved the complaint")
    actor, role = _acting(engine, "--by", args.by, "desk.work")
    try:
        sent = desk.resolve_escalation(
            engine,
            city_code=args.city,
            ticket_id=args.ticket,
            resolution=args.resolution,
            resolved_by=actor,
            role=role,
            roster_codes=roster,
            force=args.force,
            outcome=args.outcome,
        )
    except (desk.UnknownEscalation, desk.CaseResolved) as exc:
        raise ConfigError(
            f"{exc} (check the ticket id, or --force to send the resolution anyway)"
        ) from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return _print_sent(args, sent)


def _hub_trace(args: argparse.Namespace) -> int:
    from province_hub import desk

    engine, roster = _one_city(args)
    # Asked for the GM hotline, the answer carries the customer's name and phone: as at the
    # web, only the GM hotline's own account may ask so.
    area = "personal_data" if args.gm_hotline else "traces.request"
    actor, role = _acting(engine, "--by", args.by, area)
    try:
        sent = desk.request_trace(
            engine,
            city_code=args.city,
            ticket_id=args.ticket,
            requested_by=actor,
            role=role,
            roster_codes=roster,
            from_gm_hotline=args.gm_hotline,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return _print_sent(args, sent)


# --- staff accounts (the supervisor web) ---------------------------------------------------


def _staff_engine(args: argparse.Namespace) -> Engine:
    from province_hub.store import create_schema
    from sync.db import make_engine

    engine = make_engine(_hub_settings(args).database_url)
    close_when_done(args, engine.dispose)
    create_schema(engine)
    return engine


def _shell_user() -> str:
    """Who runs a staff command, for the audit log: the operating-system account."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return ""


def _acting(
    engine: Engine,
    flag: str,
    given: str | None,
    area: str,
    roles: frozenset[Any] | None = None,
    what: str = "",
) -> tuple[str, str]:
    """(actor, role) for the audit log of a command done in a person's name: the shell's
    user when ``flag`` is not given (the hub's shell is trusted like an administrator);
    else an enabled hub account whose role the web would let do it (``area``), so that
    nobody is named who does not exist or could not have done it."""
    from province_hub import staff
    from province_hub.web.access import AREAS

    if given is None:
        return _shell_user() or "cli", ""
    member = staff.get_staff(engine, given)
    if member is None:
        raise ConfigError(
            f"{flag} {given!r}: no hub account has that id (leave {flag} out to act as "
            "the shell's user)"
        )
    if not member.active:
        raise ConfigError(f"{flag} {given!r}: that account is disabled")
    # ``roles`` narrows the area to what this very action takes (the kind of notice).
    allowed = AREAS[area] if roles is None else AREAS[area] & roles
    if member.role not in allowed:
        named = ", ".join(sorted(r.value for r in allowed))
        doing = f" {what}" if what else ""
        raise ConfigError(f"{flag} {given!r} is a {member.role.value}: only {named} may{doing}")
    return member.id, member.role.value


@creates_store
def _staff_add(args: argparse.Namespace) -> int:
    from province_hub import staff

    password = read_password(args)
    member = staff.add_staff(
        _staff_engine(args),
        staff_id=args.id,
        name=args.name,
        role=args.role,
        password=password,
        by=_shell_user(),
    )
    print(f"hub staff {member.id} ({member.name}) added as {member.role.value}")
    return 0


def _staff_list(args: argparse.Namespace) -> int:
    from province_hub import staff

    members = staff.list_staff(_staff_engine(args))
    print_staff(args, members, role_width=20, empty="no hub staff yet")
    return 0


def _staff_disable(args: argparse.Namespace) -> int:
    from province_hub import staff

    if not staff.set_active(_staff_engine(args), staff_id=args.id, active=False, by=_shell_user()):
        print(f"hub staff {args.id} is disabled already: nothing changed")
        return 0
    print(f"hub staff {args.id} disabled (signed out at their next click)")
    return 0


def _staff_enable(args: argparse.Namespace) -> int:
    from province_hub import staff

    if not staff.set_active(_staff_engine(args), staff_id=args.id, active=True, by=_shell_user()):
        print(f"hub staff {args.id} is enabled already: nothing changed")
        return 0
    print(f"hub staff {args.id} enabled (with their password as it was)")
    return 0


def _staff_password(args: argparse.Namespace) -> int:
    from province_hub import staff

    password = read_password(args)
    staff.reset_password(_staff_engine(args), staff_id=args.id, password=password, by=_shell_user())
    print(f"hub staff {args.id}: password reset (their open sessions ended)")
    return 0


def _staff_role(args: argparse.Namespace) -> int:
    from province_hub import staff

    engine = _staff_engine(args)
    before = staff.get_staff(engine, args.id)
    member = staff.set_role(engine, staff_id=args.id, role=args.role, by=_shell_user())
    if before is not None and before.generation == member.generation:
        print(f"hub staff {member.id} is {member.role.value} already: nothing changed")
    else:
        print(f"hub staff {member.id} is {member.role.value} (their open sessions ended)")
    return 0


def _add_staff_commands(hub_sub: SubParsers) -> None:
    from province_hub.staff import HubRole, StaffError, UnknownStaff

    staff_parser = hub_sub.add_parser(
        "staff",
        help="supervisor web accounts: add, list, disable, enable, reset-password, set-role",
    )
    staff_sub = staff_parser.add_subparsers(
        dest="_staff", required=True, metavar="[add|list|disable|enable|reset-password|set-role]"
    )
    roles = [r.value for r in HubRole]
    add = staff_sub.add_parser("add", help="create a hub account")
    add.add_argument("--id", required=True, help="sign-in id: 2-64 letters, digits, . _ -")
    add.add_argument("--name", required=True, help="the person's name (shown in lists and history)")
    add.add_argument("--role", required=True, choices=roles)
    password_flag(add)
    add.set_defaults(_handler=_staff_add)
    listing = staff_sub.add_parser("list", help="list hub accounts")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(_handler=_staff_list)
    disable = staff_sub.add_parser("disable", help="disable a hub account (its sessions end)")
    disable.add_argument("--id", required=True)
    disable.set_defaults(_handler=_staff_disable)
    enable = staff_sub.add_parser("enable", help="let a disabled hub account sign in again")
    enable.add_argument("--id", required=True)
    enable.set_defaults(_handler=_staff_enable)
    password = staff_sub.add_parser(
        "reset-password", help="give a hub account a new password (its sessions end)"
    )
    password.add_argument("--id", required=True)
    password_flag(password)
    password.set_defaults(_handler=_staff_password)
    role = staff_sub.add_parser(
        "set-role", help="move a hub account to another role (its sessions end)"
    )
    role.add_argument("--id", required=True)
    role.add_argument("--role", required=True, choices=roles)
    role.set_defaults(_handler=_staff_role)
    for sub in (add, listing, disable, enable, password, role):
        add_arguments(sub, HubSettings, nested=True)
    refusals(staff_parser, StaffError, UnknownStaff)


# --- parser --------------------------------------------------------------------------------


def add_commands(tiers: SubParsers) -> None:
    """Add ``hub`` and its subcommands to ``fedsync``'s sub-parsers (entry point)."""
    hub = tiers.add_parser("hub", help="the province hub: run it, see link status, send notices")
    add_arguments(hub, HubSettings)
    hub.set_defaults(_handler=_hub_run)
    hub_sub = hub.add_subparsers(
        dest="_sub",
        metavar="[run|status|notice|notices|migrate|backup|restore|resolve|trace|figures|staff]",
    )
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
        help="announcement, task, standard-answer or finding",
    )
    notice.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    notice.add_argument(
        "--to",
        action="append",
        default=None,
        help="comma-separated city codes, or 'all' (required: says it); repeatable",
    )
    notice.add_argument(
        "--deadline",
        default="",
        help="ISO date-time a TASK must be done by; without an offset, in the federation's "
        "time zone (--timezone); a date alone means 23:59 of that day",
    )
    notice.add_argument(
        "--sender",
        default=None,
        help="an enabled hub account that may send this kind (default: the shell's user)",
    )
    notice.add_argument(
        "--category",
        default="",
        help="standard-answer: a category code of the hub's tree (--categories)",
    )
    notice.add_argument("--question", default="", help="standard-answer: the question")
    notice.add_argument("--answer", default="", help="standard-answer: the answer to give")
    notice.add_argument(
        "--version", type=int, default=0, help="standard-answer: 1, 2…; a new one supersedes"
    )
    notice.add_argument("--key", default="", help="standard-answer: kept across versions")
    notice.add_argument("--about-city", default="", help="finding: the city it is about")
    notice.add_argument("--source", default="", help="finding: qa or supervision")
    notice.set_defaults(_handler=_hub_notice)
    notices = hub_sub.add_parser(
        "notices", help="per notice sent: targets, delivered, read, done, objections"
    )
    notices.add_argument("--kind", default=None, help="only this kind, e.g. announcement, task")
    notices.add_argument("--json", action="store_true", help="machine-readable output")
    notices.set_defaults(_handler=_hub_notices)
    hub_migrate = hub_sub.add_parser(
        "migrate", help="bring the hub store to the latest schema revision and print it"
    )
    hub_migrate.set_defaults(_handler=_hub_migrate)
    hub_backup = hub_sub.add_parser(
        "backup",
        help="copy the hub's SQLite store, consistent while the hub runs (PostgreSQL: pg_dump)",
        description="Copies the hub's SQLite store with SQLite's online backup API: the copy "
        "is the store as of one commit, taken while the hub keeps running, written to a new "
        "file readable by its owner only. A PostgreSQL store is backed up with pg_dump.",
    )
    hub_backup.add_argument("--to", required=True, metavar="FILE", help="the new file to write")
    hub_backup.set_defaults(_handler=_hub_backup)
    hub_restore = hub_sub.add_parser(
        "restore",
        help="put a backup in place of the hub's SQLite store (every hub process stopped)",
        description="Replaces the hub's SQLite store with a backup made by `hub backup`, "
        "through SQLite itself: a WAL the old store left is settled, never laid under the "
        "copy. Stop the hub first. Without --yes it says what would be replaced and exits 1. "
        "The cities then re-send what the hub lost (README: a hub restored from a backup). "
        "A PostgreSQL store is restored with pg_restore.",
    )
    add_restore_options(hub_restore)
    hub_restore.set_defaults(_handler=_hub_restore)
    resolve = hub_sub.add_parser(
        "resolve",
        help="send a city the province's resolution of a complaint it escalated",
        description="Sends an ESCALATION_RESOLUTION notice to that one city; the city node "
        "applies it to the ticket (returned for the callback) when the notice arrives.",
    )
    resolve.add_argument("--city", required=True, help="the city that escalated (its code)")
    resolve.add_argument("--ticket", required=True, help="the city's ticket id")
    resolve.add_argument("--resolution", required=True, help="what the province decided/did")
    resolve.add_argument(
        "--by",
        default=None,
        help="who resolved it: an enabled gm_hotline account (default: the shell's user)",
    )
    resolve.add_argument(
        "--outcome",
        required=True,
        choices=["upheld", "partly_upheld", "not_upheld", "withdrawn"],
        help="how the complaint was settled (shown on the escalation desk; the web and the "
        "API ask for it too)",
    )
    resolve.add_argument(
        "--force",
        action="store_true",
        help="send even if the hub holds no such escalation, or it is resolved already",
    )
    resolve.add_argument("--json", action="store_true", help="machine-readable output")
    resolve.set_defaults(_handler=_hub_resolve)
    trace = hub_sub.add_parser(
        "trace",
        help="ask a city for one ticket's history",
        description="Sends a TRACE_REQUEST notice to that one city; the node answers with a "
        "TicketTrace (the customer's name and phone, in their fields and in the history "
        "notes, masked unless --gm-hotline).",
    )
    trace.add_argument("--city", required=True, help="the city's code")
    trace.add_argument("--ticket", required=True, help="the city's ticket id")
    trace.add_argument(
        "--gm-hotline",
        action="store_true",
        help="asked by the general-manager hotline: the answer may carry the unmasked phone",
    )
    trace.add_argument(
        "--by",
        default=None,
        help="who asks: an enabled supervisor or gm_hotline account (default: the shell's user)",
    )
    trace.add_argument("--json", action="store_true", help="machine-readable output")
    trace.set_defaults(_handler=_hub_trace)
    for sub in (
        hub_run,
        status,
        notice,
        notices,
        hub_migrate,
        hub_backup,
        hub_restore,
        resolve,
        trace,
    ):
        add_arguments(sub, HubSettings, nested=True)
    from province_hub.figures_cli import add_figures_command

    add_figures_command(hub_sub)
    _add_staff_commands(hub_sub)
