"""``fedsync city …``: run a city node, see its link, work its inbox, re-base after a
conflict; the staff's work commands are in :mod:`city_node.cli_work`.

Registered with ``fedsync`` through the ``fedsync.tiers`` entry point (see
:mod:`sync.commands`). The heavier modules are imported inside the command that needs them,
so ``fedsync pki …`` and ``fedsync hub …`` do not pay for the node's stack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from city_node.cli_work import (
    add_work_commands,
    city_context,
    city_engine,
    city_settings,
    staff_actor,
)
from city_node.context import CityError
from city_node.settings import CitySettings
from sync.backup import add_restore_options
from sync.commands import (
    SubParsers,
    close_when_done,
    creates_store,
    print_data,
    refusals,
    whole_in,
)
from sync.config import ConfigError, add_arguments
from sync.limits import terminal_safe
from sync.vocabulary import ReceiptAction
from sync.zones import in_zone

if TYPE_CHECKING:
    import grpc


@creates_store
def _city_run(args: argparse.Namespace) -> int:
    from city_node.app import serve
    from city_node.simulator_live import demo_extras

    settings = city_settings(args)
    asyncio.run(serve(settings, demo_extras(settings)))
    return 0


def _city_status(args: argparse.Namespace) -> int:
    from city_node.link_view import link_view, silent_after
    from sync.outbox import Outbox

    settings = city_settings(args)
    zone = ZoneInfo(settings.timezone)
    snapshot = Outbox(city_engine(args)).snapshot()
    # What is true now, as the console's link page says it: a node that stopped (or whose
    # hub went away) is silent since its last contact, whatever its last event was.
    view = link_view(snapshot, silent_after=silent_after(settings.heartbeat_seconds))

    data = {
        "city_code": snapshot.city_code,
        "state": view.state,
        "silent_since": view.since,
        "last_event": snapshot.state,
        "epoch": snapshot.epoch,
        "last_seq": snapshot.last_seq,
        "delivered_seq": snapshot.delivered_seq,
        "backlog": snapshot.backlog,
        "oldest_unsent_age_s": int(snapshot.oldest_unsent_age().total_seconds()),
        "hub_acked_seq": snapshot.hub_acked_seq,
        "notice_cursor": snapshot.notice_cursor,
        "last_push": snapshot.last_push_at,
        # An error from before the link came back is history, not state: shown while the
        # link is not connected, as on the console's link page (city_node.link_view).
        "last_error": view.error,
        "last_error_at": view.error_at,
        "last_rejection": snapshot.last_rejection,
    }
    shown = in_zone(data, zone)  # times on the federation's clock, as the rest of the CLI
    lines = (
        f"{key:<20} {value.isoformat() if isinstance(value, datetime) else value}"
        for key, value in shown.items()
    )
    print_data(args, shown, "\n".join(lines))
    return 0


def _city_inbox(args: argparse.Namespace) -> int:
    from city_node import services
    from city_node.notice_refs import notice_refs

    ctx = city_context(args)
    rows = services.inbox(ctx.engine, limit=args.limit)
    if not rows:
        print("no notices")
        return 0
    refs = notice_refs(ctx.engine, rows, ctx.zone)
    # R read, D done, O objected to; a receipt names the notice by its ref or its seq.
    print(f"{'ref':<14} {'seq':>13} {'kind':<22} {'priority':<7} {'RDO':<3} title")
    for row in rows:
        marks = "".join(
            flag
            for flag, at in (("R", row.read_at), ("D", row.done_at), ("O", row.objection_at))
            if at
        )
        # The province's answer to an objection names the notice it answers.
        link = f" (re #{row.reply_to_seq})" if row.reply_to_seq else ""
        ref = refs.get(int(row.notice_seq), "")
        line = (
            f"{ref:<14} {row.notice_seq:>13} {row.kind:<22} {row.priority:<7} {marks:<3} "
            f"{row.title}{link}"
        )
        # A title is the province's text: shown, never allowed to drive the terminal.
        print(terminal_safe(line))
    return 0


def _city_receipt(args: argparse.Namespace) -> int:
    from city_node import services
    from city_node.context import CityError
    from city_node.notice_refs import seq_of_ref

    # The receipt names a real, active staff member, as the console's do.
    ctx = city_context(args)
    actor = staff_actor(ctx, args.actor, flag="--actor")
    given = args.notice.strip()
    found: int | None = int(given) if given.isascii() and given.isdigit() else None
    if found is None:
        try:
            found = seq_of_ref(ctx.engine, given, ctx.zone)
        except ValueError as exc:
            raise ConfigError(f"--notice: {exc} or a seq") from None
        if found is None:
            raise ConfigError(f"--notice {given}: no such notice in this city's inbox")
    notice_seq: int = found
    try:
        seq = services.record_receipt(
            ctx.engine,
            notice_seq=notice_seq,
            action=args.action,
            actor=actor,
            note=args.note,
        )
    except CityError as exc:  # the root of every city refusal (city_node.errors)
        raise ConfigError(str(exc)) from None
    print(f"receipt queued as seq {seq}")
    return 0


def _city_backup(args: argparse.Namespace) -> int:
    from sync.backup import backup_command

    return backup_command("city store", city_settings(args).database_url, args.to)


@creates_store
def _city_restore(args: argparse.Namespace) -> int:
    from city_node.node_lock import node_lock
    from sync.backup import restore_command
    from sync.db import make_engine, sqlite_file

    settings = city_settings(args)
    store = sqlite_file(settings.database_url)
    if not args.yes or store is None or not store.is_file():
        # Nothing to lock: the plan alone, a store not made yet, or a refusal (PostgreSQL).
        return restore_command("city store", settings.database_url, args.source, yes=args.yes)
    # Never under a running node: it would go on with its own idea of the outbox.
    engine = make_engine(settings.database_url)
    close_when_done(args, engine.dispose)
    with node_lock(engine, settings.code):
        return restore_command("city store", settings.database_url, args.source, yes=True)


def _hub_unreachable(exc: OSError) -> str:
    """Why the city's own TLS handshake with the hub failed, for a person."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"its certificate does not verify against the province CA in --pki-dir "
            f"({exc.verify_message}); check --hub and --pki-dir"
        )
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc}); is that the hub's port?"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the hub running, and is that its port?)"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"cannot connect ({exc.strerror or exc})"


def _rpc_reason(exc: grpc.RpcError) -> str:
    """A gRPC failure as ``CODE: details``."""
    code, details = getattr(exc, "code", None), getattr(exc, "details", None)
    if callable(code) and callable(details):  # a call's error (grpc.aio.AioRpcError)
        return f"{code().name}: {details()}"
    return str(exc) or type(exc).__name__


def _city_rebase(args: argparse.Namespace) -> int:
    import grpc

    from city_node.node_lock import node_lock
    from city_node.services import follow_rebase
    from sync.link import check_hub_certificate, make_channel, rebase_against_hub
    from sync.outbox import Outbox
    from sync.pki import Revocations, load_city_tls

    settings = city_settings(args)
    outbox = Outbox(city_engine(args))
    snapshot = outbox.snapshot()

    tls = load_city_tls(settings.pki_dir, settings.code)
    assert tls.crl_path is not None  # load_city_tls always names it
    revocations = Revocations(tls.crl_path)

    async def run(apply: bool) -> Any:
        # The hub's answer decides what is renumbered: never take it from a revoked hub.
        try:
            await check_hub_certificate(
                settings.hub, tls, revocations, server_name=settings.hub_server_name
            )
        except OSError as exc:  # down, not trusted, not TLS: nothing was changed
            raise ConfigError(
                f"the hub at {settings.hub}: {_hub_unreachable(exc)}; nothing was re-based"
            ) from None
        channel = make_channel(settings.hub, tls, server_name=settings.hub_server_name)
        async with channel:
            try:
                return await rebase_against_hub(
                    outbox, channel, apply=apply, on_renumber=follow_rebase
                )
            except grpc.RpcError as exc:  # asked before anything is renumbered
                raise ConfigError(
                    f"the hub at {settings.hub} did not answer ({_rpc_reason(exc)}); "
                    "nothing was re-based"
                ) from None

    # Never under a running node: it would go on with its own idea of the outbox.
    with node_lock(outbox.engine, settings.code) if args.yes else contextlib.nullcontext():
        outcome = asyncio.run(run(apply=False))
        if in_step(snapshot, outcome):
            continues = (
                f"under its epoch {snapshot.epoch}"
                if outcome.hub_epoch == snapshot.epoch
                else f"and this store's epoch {snapshot.epoch} continues after them (re-based "
                "already, not sent yet)"
            )
            print(
                f"nothing to re-base: the hub holds this store's envelopes up to "
                f"{outcome.hub_acked_seq} {continues}, and what it does not hold yet is simply "
                "unsent (the link sends it)"
            )
            return 0
        if args.yes:
            outcome = asyncio.run(run(apply=True))
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


def in_step(snapshot: Any, outcome: Any) -> bool:
    """Whether this store is in step with the hub, so a re-base has nothing to do: the hub
    holds all this store delivered (a restored hub that lost rows this store has purged needs
    the re-base the link asks for) and nothing beyond its seqs; every row the hub holds is
    held at its own seq, and every other row keeps its number (unsent).

    Under the hub's epoch, unsent rows the hub holds are simply acknowledged again. Under
    another epoch — a re-base done and not sent yet, run a second time — the store must have
    counted everything the hub holds as delivered: it then sends from the hub's mark on, and
    the hub takes a new epoch that continues after its mark. A second epoch would change
    nothing but the name."""
    plan = outcome.plan
    same_epoch = outcome.hub_epoch == snapshot.epoch
    return (
        (same_epoch or snapshot.delivered_seq == outcome.hub_acked_seq)
        and snapshot.delivered_seq <= outcome.hub_acked_seq <= snapshot.last_seq
        and plan.held_elsewhere == 0
        and all(old == new for old, new in plan.seq_map.items())
    )


# --- parser --------------------------------------------------------------------------------


def add_commands(tiers: SubParsers) -> None:
    """Add ``city`` and its subcommands to ``fedsync``'s sub-parsers (entry point)."""
    city = tiers.add_parser("city", help="a city node: run it, see its link, work its inbox")
    add_arguments(city, CitySettings)
    city.set_defaults(_handler=_city_run)
    city_sub = city.add_subparsers(
        dest="_sub",
        metavar="[run|status|inbox|receipt|rebase|backup|restore|migrate|staff|ticket|report|qa|suggestions|simulate]",
    )
    city_run = city_sub.add_parser("run", help="run the node (the default)")
    city_run.set_defaults(_handler=_city_run)
    cstatus = city_sub.add_parser("status", help="link state, backlog, last push, conflicts")
    cstatus.add_argument("--json", action="store_true")
    cstatus.set_defaults(_handler=_city_status)
    cinbox = city_sub.add_parser("inbox", help="the latest province notices")
    cinbox.add_argument(
        "--limit", type=whole_in(1, 1000), default=50, help="at most this many, 1-1000"
    )
    cinbox.set_defaults(_handler=_city_inbox)
    receipt = city_sub.add_parser("receipt", help="mark a notice read, done or objected to")
    receipt.add_argument(
        "--notice",
        required=True,
        help="the notice: its reference as `city inbox` shows it (N-20261127-3) or its seq",
    )
    receipt.add_argument("--action", required=True, choices=[a.value for a in ReceiptAction])
    receipt.add_argument("--note", default="", help="what was done / the objection's reason")
    receipt.add_argument(
        "--actor",
        "--as",
        dest="actor",
        required=True,
        metavar="STAFF_ID",
        help="staff id of who acts (a center leader); --as as in the other commands",
    )
    receipt.set_defaults(_handler=_city_receipt)
    rebase = city_sub.add_parser(
        "rebase",
        help="after a sequence conflict: continue after the hub's mark",
        description="Asks the hub what it holds and shows the plan; --yes carries it out. "
        "Exit status: 0 re-based, 1 plan shown (nothing changed), 2 refused (the store, "
        "the hub unreachable or not trusted: the reason is printed).",
    )
    rebase.add_argument(
        "--yes", action="store_true", help="really re-base (otherwise show the plan, exit 1)"
    )
    rebase.set_defaults(_handler=_city_rebase)
    backup = city_sub.add_parser(
        "backup",
        help="copy the city's SQLite store, consistent while the node runs (PostgreSQL: pg_dump)",
        description="Copies the city's SQLite store with SQLite's online backup API: the copy "
        "is the store as of one commit, taken while the node keeps running, written to a new "
        "file readable by its owner only. A PostgreSQL store is backed up with pg_dump.",
    )
    backup.add_argument("--to", required=True, metavar="FILE", help="the new file to write")
    backup.set_defaults(_handler=_city_backup)
    restore = city_sub.add_parser(
        "restore",
        help="put a backup in place of the city's SQLite store (the node stopped)",
        description="Replaces the city's SQLite store with a backup made by `city backup`, "
        "through SQLite itself: a WAL the old store left is settled, never laid under the "
        "copy. Refused under a running node. Without --yes it says what would be replaced and "
        "exits 1. Then start the node: it meets the hub as a store restored from an older "
        "copy (README: re-base after a restore). A PostgreSQL store is restored with "
        "pg_restore.",
    )
    add_restore_options(restore)
    restore.set_defaults(_handler=_city_restore)
    for sub in (city_run, cstatus, cinbox, receipt, rebase, backup, restore):
        add_arguments(sub, CitySettings, nested=True)
    add_work_commands(city_sub)
    # A refusal of the city's rules (bad input, role, transition; the one tree rooted at
    # CityError, city_node.errors): the message says what is wrong.
    refusals(city, CityError)
