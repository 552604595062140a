"""What every tier's ``fedsync`` commands share, and how a tier plugs into ``fedsync``.

A tier (``province_hub``, ``city_node``) owns its commands in its own ``cli.py`` and exposes
one :data:`TierCommands` function that adds its top-level command (``hub``, ``city``) to
the sub-parsers it is given. It declares that function as an entry point of the group
:data:`TIER_GROUP` in ``pyproject.toml``; ``sync.cli`` loads the group, so ``sync`` never
imports a tier (``tests/unit/test_import_rules.py`` holds it to that).

Handlers are ``args -> exit code``. A :class:`~sync.config.ConfigError` raised by a handler
is printed and exits 2; so is any exception type a tier names with :func:`refusals` (its own
rule refusals, whose message is enough for a person). What a handler opens (an engine) it
hands to :func:`close_when_done`, and ``fedsync`` closes it when the command returns or fails.

A tier reads its settings with :func:`tier_settings`: unless the handler is marked
:func:`creates_store` (running the node, migrating its store, adding its first account), a
SQLite store that does not exist is refused there (exit 2), before anything is opened — a
mistyped path must not become a new, empty store that the command then reports on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol, TypeAlias, TypeVar

from sync.limits import BIDI_CONTROLS, terminal_safe

#: The entry-point group through which each tier adds its commands.
TIER_GROUP = "fedsync.tiers"

Handler: TypeAlias = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: What a tier's entry point is: add the tier's command to ``fedsync``'s sub-parsers.
TierCommands: TypeAlias = Callable[[SubParsers], None]

#: Namespace attribute holding the exception types :func:`refusals` declared.
REFUSALS_ATTR = "_refusals"
_CLOSERS_ATTR = "_closers"
#: Attribute :func:`creates_store` sets on a handler.
_CREATES_STORE_ATTR = "creates_store"
#: Attribute of the parsed arguments holding the settings :func:`tier_settings` resolved.
_SETTINGS_ATTR = "_fedsync_settings"


class _StoreSettings(Protocol):
    @property
    def database_url(self) -> str: ...


SettingsT = TypeVar("SettingsT", bound=_StoreSettings)


#: The options given so far in the command line being parsed: one set for the whole line,
#: as argparse parses a sub-command into a namespace of its own (``fedsync city
#: --database-url A status --database-url B`` names the store twice).
_GIVEN: ContextVar[set[str] | None] = ContextVar("fedsync_options_given", default=None)


class StoreOnce(argparse.Action):
    """An option that takes one value, given once: a second ``--start`` (or ``--to``) would
    otherwise silently replace the first — a notice sent to one city of the two typed. The
    default action of every ``fedsync`` option that stores a value (:class:`Parser`)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        given = _GIVEN.get()
        if option_string is not None and given is not None:  # a positional comes once
            if self.dest in given:
                raise argparse.ArgumentError(
                    self, "given twice: give it once (the first value would be lost)"
                )
            given.add(self.dest)
        setattr(namespace, self.dest, values)


class Parser(argparse.ArgumentParser):
    """``fedsync``'s parsers (its sub-commands' too: argparse makes them of the parent's
    class): an option that stores a value is :class:`StoreOnce`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", None, StoreOnce)
        self.register("action", "store", StoreOnce)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """A sub-command refuses what it does not know itself, with its own usage line
        (argparse leaves it to ``fedsync``, which showed only ``usage: fedsync COMMAND``)."""
        outermost = _GIVEN.get() is None
        token = _GIVEN.set(set()) if outermost else None
        try:
            parsed, extras = super().parse_known_args(args, namespace)
        finally:
            if token is not None:
                _GIVEN.reset(token)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


def filter_value(value: str | None, flag: str) -> str | None:
    """A filter flag's value: None when not given; an empty one is refused naming the flag
    (``--status ''`` listed everything, as if no filter had been asked)."""
    from sync.config import ConfigError

    if value is not None and not value.strip():
        raise ConfigError(f"{flag}: empty; give a value or leave {flag} out")
    return value


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed flags that may name settings (argparse bookkeeping starts with ``_``)."""
    return {k: v for k, v in vars(args).items() if not k.startswith("_")}


def creates_store(handler: Handler) -> Handler:
    """Mark ``handler`` as a command that may create its tier's store where none exists yet
    (the node run, ``migrate``, ``staff add``); see :func:`tier_settings`."""
    setattr(handler, _CREATES_STORE_ATTR, True)
    return handler


def tier_settings(cls: type[SettingsT], args: argparse.Namespace, *, section: str) -> SettingsT:
    """The tier's settings from flags, environment and file (:func:`sync.config.resolve`).

    A command not marked :func:`creates_store` refuses a SQLite store whose file does not
    exist, naming ``database_url`` and the path (``ConfigError``: exit 2): a read (status,
    lists, figures) or a change (staff, tickets, rebase) on a mistyped path would otherwise
    create an empty store, and its folders, and answer as if the system were empty. So with
    a PostgreSQL database that holds no table at all.
    """
    from sync.config import ConfigError, resolve
    from sync.db import sqlite_file

    # Once per command: a handler and the helpers it calls each ask for the settings, and
    # the store checks below may connect to a database server.
    known = getattr(args, _SETTINGS_ATTR, None)
    if isinstance(known, cls):
        return known
    settings = resolve(cls, flags=settings_flags(args), section=section)
    path = sqlite_file(settings.database_url)
    if path is not None and path.is_dir():
        # SQLite says only "unable to open database file".
        raise ConfigError(
            f"database_url: {path} is a folder; name the store's file in it "
            f"(sqlite:///{path / (section + '.sqlite')})"
        )
    if not getattr(getattr(args, "_handler", None), _CREATES_STORE_ATTR, False):
        _refuse_no_store(settings.database_url, section)
    setattr(args, _SETTINGS_ATTR, settings)
    return settings


def _refuse_no_store(database_url: str, section: str) -> None:
    """``ConfigError`` when ``database_url`` names no store: a SQLite file that does not
    exist, or a server's database that holds no table."""
    from sync.config import ConfigError
    from sync.db import empty_server_database, missing_sqlite_file

    code = ", --code" if section == "city" else ""
    missing = missing_sqlite_file(database_url)
    if missing is not None:
        raise ConfigError(
            f"database_url: there is no store at {missing} (check --database-url{code}; "
            f"`fedsync {section} migrate` creates a new store)"
        )
    # A server's database is made empty by whoever set up the server (Docker makes all 15):
    # a mistyped name would be turned into this tier's store, and the tier it was meant
    # for then refused on it.
    empty = empty_server_database(database_url)
    if empty is not None:
        raise ConfigError(
            f"database_url: the database {empty} is empty, no store (check "
            f"--database-url{code}; `fedsync {section} migrate` creates a new store)"
        )


def refusals(parser: argparse.ArgumentParser, *errors: type[Exception]) -> None:
    """Declare ``errors`` as refusals of the tier's rules: ``fedsync`` prints their message
    and exits 2 instead of a traceback, for every subcommand under ``parser``."""
    parser.set_defaults(**{REFUSALS_ATTR: errors})


def close_when_done(args: argparse.Namespace, close: Callable[[], object]) -> None:
    """Have ``fedsync`` call ``close`` once the command is done: a command run in-process
    (tests, scripts calling ``main``) leaves no database connection open."""
    closers: list[Callable[[], object]] = getattr(args, _CLOSERS_ATTR, [])
    setattr(args, _CLOSERS_ATTR, [*closers, close])


def close_all(args: argparse.Namespace) -> None:
    """Call what :func:`close_when_done` collected, the last opened first."""
    for close in reversed(getattr(args, _CLOSERS_ATTR, [])):
        close()


def leaf(
    parent: SubParsers, name: str, handler: Handler, help_text: str, *, json_out: bool = False
) -> argparse.ArgumentParser:
    """A subcommand running ``handler``, with ``--json`` when it prints data."""
    parser = parent.add_parser(name, help=help_text)
    parser.set_defaults(_handler=handler)
    if json_out:
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def _when(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def whole_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` for a whole number from ``low`` to ``high``: anything else is
    refused naming the flag (exit status 2), not clamped into the range unseen."""

    def parse(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{number}: give {low} to {high}")
        return number

    return parse


_JSON_UNSAFE = re.compile("[\x7f-\x9f" + "".join(sorted(BIDI_CONTROLS)) + "]")


def print_data(args: argparse.Namespace, data: Any, text: str) -> None:
    """``data`` as JSON with ``--json``, else the human ``text``; either terminal-safe."""
    if args.json:
        text = json.dumps(data, ensure_ascii=False, indent=2, default=_when)
        # json escapes C0 only: DEL, C1 (U+009B starts an escape sequence too) and the
        # bidirectional overrides become \u escapes as well (they occur in strings only).
        print(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
    else:
        print(terminal_safe(text))


class _PasswordRefused(argparse.Action):
    """``--password VALUE`` refused (exit 2) without repeating the value: written out, it
    would otherwise read as ``--password-stdin`` (argparse takes a flag's prefix) and the
    password be printed back as an unrecognised argument."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        raise argparse.ArgumentError(
            self,
            "a password is not taken on the command line (the process list and the shell's "
            "history would show it): pipe it in with --password-stdin",
        )


def password_flag(parser: argparse.ArgumentParser) -> None:
    """``--password-stdin``, the one way a command takes a password: on the command line it
    would show in the process list and the shell's history."""
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (its first line)",
    )
    parser.add_argument("--password", action=_PasswordRefused, help=argparse.SUPPRESS)


def read_password(args: argparse.Namespace) -> str:
    """The password of ``--password-stdin`` (one line), for either tier."""
    from sync.config import ConfigError

    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            # Nothing piped in (an empty file, /dev/null): say so, not "too short".
            raise ConfigError("--password-stdin: standard input gave no password (it was empty)")
        return line.rstrip("\r\n")
    raise ConfigError("give the password on standard input with --password-stdin")


def print_staff(args: argparse.Namespace, members: Any, *, role_width: int, empty: str) -> None:
    """Staff accounts of either tier (id, name, role, active) as a table or ``--json``."""
    data = [{"id": m.id, "name": m.name, "role": m.role.value, "active": m.active} for m in members]
    lines = [
        f"{m.id:<20} {m.role.value:<{role_width}} {'active' if m.active else 'inactive':<8} "
        f"{m.name}"
        for m in members
    ]
    print_data(args, data, "\n".join(lines) or empty)
