"""``fedsync demo``'s background cities: several city nodes in one process.

Each node is exactly what ``fedsync city`` runs — its own store, certificate and key, link
to the hub, routine and the demo's traffic — built by :func:`city_node.app.build` and run by
:meth:`city_node.app.CityNode.run`; here they share one interpreter and one event loop. The
demo starts the city that serves a console as its own ``fedsync city`` process and the
others with this module: the interpreter, gRPC, protobuf and SQLAlchemy are then in memory
once rather than once per city (a ``fedsync city`` process is ~90 MB resident; see
``benchmarks/demo_footprint.py``).

A deployment runs one node per process, on the city's own machine; a process shared by
several cities is one failure domain, which only a demo can afford (``fedsync demo
--process-per-city`` runs them as a deployment does).

    python -m city_node.demo_cities --codes 620200,620300 --store-dir DIR [fedsync city flags]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from city_node.settings import CitySettings
from sync.commands import settings_flags
from sync.config import ConfigError, add_arguments, resolve
from sync.demo import city_store_url
from sync.pki_types import PkiError
from sync.roster import is_city_code

log = logging.getLogger(__name__)


def settings_for(args: argparse.Namespace) -> list[CitySettings]:
    """One node's settings per code: the flags given, with each city's code and store."""
    codes = [c.strip() for c in args.codes.split(",") if c.strip()]
    if not codes:
        raise ConfigError("--codes: give at least one city code")
    bad = [c for c in codes if not is_city_code(c)]
    if bad:
        raise ConfigError(f"--codes: {', '.join(bad)} is not a six-digit city code")
    if len(set(codes)) != len(codes):
        raise ConfigError("--codes: a city appears twice")
    flags = {
        k: v
        for k, v in settings_flags(args).items()
        if k not in ("codes", "store_dir", "verbose", "code", "database_url")
    }
    settings = [
        resolve(
            CitySettings,
            flags=flags,
            section="city",
            overrides={"code": code, "database_url": city_store_url(args.store_dir, code)},
        )
        for code in codes
    ]
    if any(s.http_port for s in settings):
        raise ConfigError(
            "--http-port: a city serving a console runs as its own `fedsync city` process"
        )
    return settings


async def run_nodes(settings: list[CitySettings]) -> int:
    """Build every node (a node that cannot be built stops them all before any starts), then
    run them until SIGTERM or SIGINT; 1 when a node ended with an error, 0 otherwise."""
    from city_node.app import build
    from city_node.simulator_live import demo_extras
    from sync.pki import load_city_tls

    for s in settings:  # every city's certificate first: a refusal then opens no store
        load_city_tls(s.pki_dir, s.code)
    nodes = [build(s, demo_extras(s)) for s in settings]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # The nodes' work in threads (a store's backfill, the traffic's ticks, the link's
    # certificate checks) goes to the loop's default pool: sized per node, so that one
    # city's long backfill never holds up another's link as a pool of six would.
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=4 * len(nodes), thread_name_prefix="demo-cities")
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for s in settings:
        print(f"fedsync city {s.code} linking to {s.hub}", flush=True)
    # A node that fails ends alone: the others keep their links (as separate processes would).
    outcomes = await asyncio.gather(*(node.run(stop) for node in nodes), return_exceptions=True)
    failed = 0
    for s, outcome in zip(settings, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed += 1
            log.error("city %s stopped: %s: %s", s.code, type(outcome).__name__, outcome)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m city_node.demo_cities",
        description="several demo city nodes in one process (fedsync demo starts it)",
    )
    parser.add_argument("--codes", required=True, help="comma-separated city codes")
    parser.add_argument(
        "--store-dir", type=Path, required=True, help="directory of the cities' city-CODE.sqlite"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    add_arguments(parser, CitySettings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = settings_for(args)
        return asyncio.run(run_nodes(settings))
    except (ConfigError, PkiError) as exc:
        print(f"demo cities: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
