"""Settings from flags, ``FEDSYNC_*`` environment variables and an optional TOML file.

Precedence: flag > environment > TOML file > default. A settings class is a frozen dataclass
whose fields carry their help text (``setting(...)``); ``add_arguments`` turns the fields into
argparse flags, so ``--help`` explains every setting, and ``resolve`` merges the sources.

TOML: top-level keys, or a table named after the command (``[hub]``, ``[city]``), with the
field names as keys, e.g. ``database_url = "postgresql+psycopg://..."``.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = TypeVar("T")
ENV_PREFIX = "FEDSYNC_"


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the setting and source."""


#: The stores fedsync ships a driver for: URL scheme's backend → drivers accepted.
_DATABASE_DRIVERS = {"sqlite": ("", "pysqlite"), "postgresql": ("", "psycopg")}


def check_address(name: str, address: str, *, any_port: bool = False) -> None:
    """Refuse a ``host:port`` setting (``hub``, ``listen``) without a host, or whose port is
    not a number 1-65535 (gRPC would wrap 99999 round to another port; ``any_port``: 0 too,
    a free port chosen when listening); an IPv6 host goes in brackets, ``[::1]:7443``."""
    host, sep, port = address.rpartition(":")
    if not sep or not host.strip("[]") or not port.isascii() or not port.isdigit():
        raise ConfigError(f"{name} {address!r} must be host:port, e.g. 127.0.0.1:7443")
    if not (0 if any_port else 1) <= int(port) <= 65535:
        span = "0-65535 (0: any free port)" if any_port else "1-65535"
        raise ConfigError(f"{name} {address!r}: port {port} is not {span}")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ConfigError(f"{name} {address!r}: write an IPv6 host in brackets, [::1]:7443")


def trusted_proxies(name: str, value: str) -> tuple[str, ...]:
    """The addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``) of the proxies in
    front of a web server whose ``X-Forwarded-For`` names the client, from a comma-separated
    setting; "" is none. Refused naming ``name``: anything else, and ``*`` (every peer could
    then name any address, and a guesser would never meet the per-address login limit)."""
    out: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item)  # a network's host bits must be 0
        except ValueError:
            raise ConfigError(
                f"{name} {item!r}: give the proxies' IP addresses or networks, comma-separated "
                "(10.0.0.5, 10.0.0.0/24), not host names or *"
            ) from None
        if network.prefixlen == 0:
            raise ConfigError(
                f"{name} {item!r}: every address would be trusted to name any client; give "
                "the proxies' own addresses"
            )
        out.append(item)
        if isinstance(network, ipaddress.IPv4Network) and network.num_addresses == 1:
            # A proxy reaching a dual-stack listener ("::") arrives as ::ffff:10.0.0.5.
            out.append(f"::ffff:{network.network_address}")
    return tuple(out)


def check_timezone(name: str) -> None:
    """Refuse a ``timezone`` that names no IANA zone this machine knows (``Asia/Shanghai``)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: "", "../x", "/abs"
        raise ConfigError(
            f"timezone {name!r}: not a time zone this machine knows; give an IANA name such "
            "as Asia/Shanghai"
        ) from None


def check_database_url(url: str) -> None:
    """Refuse a store URL fedsync cannot open (another database, a driver it does not ship, a
    typo) with a ``ConfigError`` naming its scheme only: the URL may hold a password."""
    scheme, sep, _ = url.partition("://")
    backend, _, driver = scheme.partition("+")
    if not sep or driver not in _DATABASE_DRIVERS.get(backend, ()):
        shown = repr(scheme) if sep else "without a scheme"
        raise ConfigError(
            f"database_url {shown}: use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
        )


def setting(default: Any, help: str, *, secret: bool = False) -> Any:
    """A settings field with its help line (shown by ``--help``)."""
    return dataclasses.field(
        default=default, metadata={"help": help, "secret": secret}, repr=not secret
    )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _field_type(cls: type, field: dataclasses.Field[Any]) -> Any:
    hints = typing.get_type_hints(cls)
    hint = hints[field.name]
    if isinstance(hint, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0]
    return hint


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, nested: bool = False) -> None:
    """One flag per settings field, with its help, environment name and default.

    ``nested`` is for a subcommand repeating its parent's flags: unset flags are then left
    out of the namespace instead of overwriting what was given before the subcommand.
    """
    unset: Any = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--config", type=Path, default=unset, help="optional TOML file (env FEDSYNC_CONFIG)"
    )
    for field in dataclasses.fields(cls):
        kind = _field_type(cls, field)
        default = field.default
        # The default is the code's, never a secret (a secret setting's value is kept out of
        # repr and logs); None and "" are no default to show, a path is shown as written.
        shown = ""
        if default is not None and default != "":
            shown = (
                f"; default {default}" if isinstance(default, Path) else f"; default {default!r}"
            )
        help_text = f"{field.metadata.get('help', '')} (env {env_name(field.name)}{shown})"
        if kind is bool:
            parser.add_argument(
                _flag(field.name),
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=unset,
                help=help_text,
            )
        else:
            parser.add_argument(_flag(field.name), dest=field.name, default=unset, help=help_text)


def _convert(cls: type, field: dataclasses.Field[Any], value: Any, source: str) -> Any:
    kind = _field_type(cls, field)
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind is int:
            return int(value)
        if kind is float:
            return float(value)
        if kind is Path:
            return Path(value)
        if kind is str:
            return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{field.name} from {source}: {value!r} is not valid ({exc})") from None
    return value


def resolve(
    cls: type[T],
    *,
    flags: Mapping[str, Any],
    section: str,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from defaults < TOML < environment < flags (< explicit overrides)."""
    env = os.environ if environ is None else environ
    config_path = flags.get("config") or env.get(ENV_PREFIX + "CONFIG")
    file_values: dict[str, Any] = {}
    if config_path:
        path = Path(config_path)
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        file_values = {k: v for k, v in data.items() if not isinstance(v, dict)}
        file_values.update(data.get(section, {}))
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(file_values) - names)
    if unknown:
        raise ConfigError(f"config file {config_path}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        chosen: Any = None
        for source, raw in (
            ("config file", file_values.get(field.name)),
            (env_name(field.name), env.get(env_name(field.name))),
            (_flag(field.name), flags.get(field.name)),
            ("caller", (overrides or {}).get(field.name)),
        ):
            if raw is not None:
                chosen = _convert(cls, field, raw, source)
        if chosen is not None:
            values[field.name] = chosen
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
