"""The ``fedsync`` command: ``hub``, ``city``, ``pki`` and ``demo``.

Each tier owns its commands (``province_hub/cli.py``, ``city_node/cli.py``) and plugs them
in through the ``fedsync.tiers`` entry point group declared in ``pyproject.toml``, so this
module, like all of ``sync``, imports neither tier (see :mod:`sync.commands`).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import cast

from sync.commands import (
    REFUSALS_ATTR,
    TIER_GROUP,
    Handler,
    Parser,
    SubParsers,
    TierCommands,
    close_all,
    whole_in,
)
from sync.config import ConfigError

# --- pki -----------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    """``--duration``: seconds, 0 or more (a finite number)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text}: give 0 (until Ctrl-C) or more seconds")
    return value


def _folder(text: str) -> Path:
    """A folder flag's value: an empty one would be the current folder (``pki export --to ''``
    wrote a city's private key where the shell stood)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "name the folder (an empty value would be the current one)"
        )
    return Path(text)


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

    if args.city is not None:
        from sync.roster import load_roster

        if args.hub_host:
            raise ConfigError("--hub-host names the hub: it goes with --hub, not --city")

        codes = {c.code for c in load_roster(args.roster)}
        if args.city not in codes:
            # A hub refuses a city off its roster; such a certificate would only look valid.
            raise ConfigError(
                f"--city {args.city!r} is not a city of the roster "
                f"({args.roster or 'the packaged Gansu roster'}); give --roster for another"
            )
        crt, _ = pki.issue_city(args.dir, args.city)
    else:
        if not args.hub:  # an empty --city is no --hub
            raise ConfigError("give --city CODE or --hub")
        crt, _ = pki.issue_hub(args.dir, hosts=args.hub_host)
        print(f"issued {crt} for {', '.join(pki.hub_hosts(args.dir))}")
        return 0
    print(f"issued {crt}")
    return 0


def _pki_revoke(args: argparse.Namespace) -> int:
    from sync import pki

    serial = pki.revoke(args.dir, code=args.city, serial=args.serial, reason=args.reason)
    print(
        f"revoked serial {serial}; copy {args.dir / 'crl.pem'} to the hub and the cities: "
        "each re-reads it within a second and refuses that certificate"
    )
    return 0


def _pki_export(args: argparse.Namespace) -> int:
    from sync import pki

    written = pki.export_node(args.dir, args.to, code=args.city)
    print(f"{'city ' + args.city if args.city else 'hub'}: {len(written)} files in {args.to}")
    return 0


# --- demo ----------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from sync.demo import run_demo

    return run_demo(
        duration=args.duration,
        cities=args.cities,
        workdir=args.workdir,
        lang=args.lang,
        keep=args.keep,
        process_per_city=args.process_per_city,
    )


# --- parser --------------------------------------------------------------------------------


#: ``fedsync --help`` lists the province before the cities (installers sort entry points
#: by name); a tier not named here follows them.
_TIER_ORDER = ("hub", "city")


def _tier_commands() -> list[TierCommands]:
    """Every installed tier's command registrar (entry points of :data:`TIER_GROUP`)."""
    found = sorted(
        entry_points(group=TIER_GROUP),
        key=lambda ep: (
            _TIER_ORDER.index(ep.name) if ep.name in _TIER_ORDER else len(_TIER_ORDER),
            ep.name,
        ),
    )
    return [ep.load() for ep in found]


def build_parser(*, tiers_too: bool = True) -> argparse.ArgumentParser:
    """The whole command line; ``tiers_too=False`` leaves out the tiers' commands (and
    their imports: ``fedsync demo`` is a long-lived process that only starts others)."""
    parser = Parser(prog="fedsync", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    # Of fedsync's Parser class, which a tier sees as the ArgumentParser it is.
    tiers = cast(
        SubParsers, parser.add_subparsers(dest="_command", required=True, metavar="COMMAND")
    )
    registrars = _tier_commands() if tiers_too else []
    for add_commands in registrars:
        add_commands(tiers)
    if not registrars and tiers_too:
        # Entry points exist only once the distribution is installed (`make install`).
        parser.epilog = "hub and city are missing: install fedsync (pip install -e .) first"

    pki = tiers.add_parser("pki", help="the province CA and node certificates")
    pki_sub = pki.add_subparsers(dest="_sub", required=True, metavar="[init|issue|revoke|export]")
    init = pki_sub.add_parser(
        "init", help="create the CA, the hub's and every roster city's certificate"
    )
    init.add_argument("--dir", type=_folder, required=True)
    init.add_argument("--roster", type=Path, default=None, help="roster CSV; default: Gansu")
    init.add_argument("--hub-host", action="append", help="DNS name or IP of the hub (repeatable)")
    init.add_argument("--overwrite", action="store_true", help="replace an existing CA")
    init.set_defaults(_handler=_pki_init)
    issue = pki_sub.add_parser("issue", help="(re-)issue one node's certificate")
    issue.add_argument("--dir", type=_folder, required=True)
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--city", help="city code")
    who.add_argument("--hub", action="store_true", help="the hub")
    issue.add_argument(
        "--hub-host",
        action="append",
        help="DNS name or IP of the hub (repeatable); default with --hub: the names of the hub "
        "certificate it replaces",
    )
    issue.add_argument(
        "--roster", type=Path, default=None, help="roster CSV --city must be on; default: Gansu"
    )
    issue.set_defaults(_handler=_pki_issue)
    revoke = pki_sub.add_parser("revoke", help="revoke a city's certificate (the hub refuses it)")
    revoke.add_argument("--dir", type=_folder, required=True)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--city", help="city code (its current certificate)")
    which.add_argument("--serial", type=int, help="a certificate serial")
    revoke.add_argument("--reason", default="unspecified")
    revoke.set_defaults(_handler=_pki_revoke)
    export = pki_sub.add_parser(
        "export", help="copy one node's own files (CA cert, CRL, its cert and key) to a folder"
    )
    export.add_argument("--dir", type=_folder, required=True, help="the PKI directory")
    node = export.add_mutually_exclusive_group(required=True)
    node.add_argument("--city", help="city code")
    node.add_argument("--hub", action="store_true", help="the hub")
    export.add_argument("--to", type=_folder, required=True, help="the node's pki_dir")
    export.set_defaults(_handler=_pki_export)

    demo = tiers.add_parser("demo", help="the whole federation on this machine (Ctrl-C stops it)")
    demo.add_argument(
        "--cities",
        type=whole_in(1, 14),
        default=14,
        help="how many roster cities to start, 1-14 (the first N of the roster)",
    )
    demo.add_argument(
        "--duration",
        type=_seconds,
        default=0,
        help="stop after N seconds of running, counted once every node is up (0: until Ctrl-C)",
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="PKI, stores and logs here, kept afterwards and reused by the next run "
        "(default: a temporary directory, deleted at the end)",
    )
    demo.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory at the end (also FEDSYNC_DEMO_KEEP=1)",
    )
    demo.add_argument(
        "--lang",
        choices=["zh", "en"],
        default="zh",
        help="language of the demo's data: staff names, QA findings, province notices "
        "(default: zh)",
    )
    demo.add_argument(
        "--process-per-city",
        action="store_true",
        help="run every city as its own `fedsync city` process, as a deployment does "
        "(default: the city with the console alone, the others together in one process)",
    )
    demo.set_defaults(_handler=_demo)
    return parser


def _database_unreachable(exc: BaseException) -> str | None:
    """The reason, for a person, when ``exc`` says the store cannot be opened; else None.

    Connection and open failures only (the DB-API's OperationalError / InterfaceError, a
    file the store cannot be created at): a refused statement stays a traceback, as a bug.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return f"cannot use the database: {reason}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot use {exc.filename}: {exc.strerror}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    for word in words:
        # Bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape): no store
        # or message can hold them, so they are refused here, before anything is opened.
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in word):
            try:
                raw = word.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:  # a surrogate no byte made (a caller's own string)
                raw = word.encode("utf-8", "backslashreplace")
            shown = raw.decode("utf-8", "backslashreplace")
            print(f"fedsync: error: argument {shown!r} is not valid UTF-8 text", file=sys.stderr)
            return 2
    # The demo runs for hours next to the federation it starts: it need not carry the
    # tiers' command modules (SQLAlchemy, Alembic: ~40 MB).
    parser = build_parser(tiers_too=words[:1] != ["demo"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler = args._handler
    try:
        code = handler(args)
        sys.stdout.flush()  # a reader gone early (`| head`) shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader took what it wanted: no traceback, and no second error when Python
        # flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except ConfigError as exc:
        print(f"fedsync: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the message of a known failure is enough for a person
        from sync.categories import CategoryError
        from sync.outbox import OutboxError
        from sync.pki import PkiError
        from sync.roster import RosterError

        if isinstance(exc, PkiError | RosterError | OutboxError | CategoryError):
            print(f"fedsync: error: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, getattr(args, REFUSALS_ATTR, ())):
            print(f"fedsync: error: {exc}", file=sys.stderr)
            return 2
        unreachable = _database_unreachable(exc)
        if unreachable:
            print(f"fedsync: error: {unreachable}", file=sys.stderr)
            return 2
        raise
    finally:
        close_all(args)


if __name__ == "__main__":
    raise SystemExit(main())
