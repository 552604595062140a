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
from datetime import UTC, datetime
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

    try:
        seq = services.record_receipt(
            _city_engine(args),
            notice_seq=args.notice,
            action=args.action,
            actor=args.actor,
            note=args.note,
        )
    except CityError as exc:
        raise ConfigError(str(exc)) from None
    print(f"receipt queued as seq {seq}")
    return 0


def _city_rebase(args: argparse.Namespace) -> int:
    from sync.link import hello_request, make_channel
    from sync.outbox import Outbox
    from sync.pb.fedsync.v1 import federation_pb2_grpc as pb_grpc
    from sync.pki import load_city_tls

    settings = _city_settings(args)
    outbox = Outbox(_city_engine(args))
    snapshot = outbox.snapshot()

    async def ask_hub() -> Any:
        channel = make_channel(
            settings.hub,
            load_city_tls(settings.pki_dir, settings.code),
            server_name=settings.hub_server_name,
        )
        async with channel:
            return await pb_grpc.FederationStub(channel).Hello(hello_request(snapshot), timeout=30)

    hello = asyncio.run(ask_hub())
    print(
        f"hub holds seqs up to {hello.acked_through_seq} (epoch {hello.epoch or '-'}); this store "
        f"has assigned up to {snapshot.last_seq}, delivered {snapshot.delivered_seq} "
        f"(epoch {snapshot.epoch})"
    )
    if not args.yes:
        print("re-run with --yes to start a new epoch after the hub's high-water mark")
        return 1
    epoch, moved = outbox.rebase(hub_acked_seq=hello.acked_through_seq)
    print(
        f"re-based: new epoch {epoch}; {moved} unsent envelopes renumbered from "
        f"{hello.acked_through_seq + 1}"
    )
    return 0


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
    hub_sub = hub.add_subparsers(dest="_sub", metavar="[run|status|notice]")
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
    for sub in (hub_run, status, notice):
        add_arguments(sub, HubSettings, nested=True)

    city = tiers.add_parser("city", help="a city node: run it, see its link, work its inbox")
    add_arguments(city, CitySettings)
    city.set_defaults(_handler=_city_run)
    city_sub = city.add_subparsers(dest="_sub", metavar="[run|status|inbox|receipt|rebase]")
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
        raise


if __name__ == "__main__":
    raise SystemExit(main())
