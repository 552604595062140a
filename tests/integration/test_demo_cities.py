"""``python -m city_node.demo_cities``: the demo's cities as nodes of one process.

Each node links to a real hub over mutual TLS with its own certificate and pushes from its
own store; SIGTERM stops them all cleanly; what the settings or the PKI refuse is refused
before any node starts."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from city_node import services as city_services
from city_node.demo_cities import build_parser, settings_for
from city_node.store import create_schema
from province_hub.store import CityLink, Record
from sync.config import ConfigError
from sync.db import make_engine
from sync.demo import city_store_url as store_url
from sync.outbox import Outbox
from sync.pb.fedsync.v1 import federation_pb2 as pb

CODES = ("620200", "620300")


def _args(*extra: str) -> list[str]:
    return [sys.executable, "-m", "city_node.demo_cities", *extra]


def test_each_city_gets_its_own_code_and_store(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--codes", "620200, 620300", "--store-dir", str(tmp_path), "--hub", "127.0.0.1:9"]
    )
    settings = settings_for(args)
    assert [s.code for s in settings] == list(CODES)
    assert [s.database_url for s in settings] == [store_url(tmp_path, c) for c in CODES]
    assert all(s.hub == "127.0.0.1:9" for s in settings)


@pytest.mark.parametrize(
    ("codes", "extra", "named"),
    [
        ("", [], "at least one city code"),
        ("620200,62030", [], "62030 is not a six-digit city code"),
        ("620200,620200", [], "appears twice"),
        ("620200", ["--http-port", "8080"], "--http-port"),
    ],
)
def test_refused_settings_name_what_is_wrong(
    tmp_path: Path, codes: str, extra: list[str], named: str
) -> None:
    args = build_parser().parse_args(["--codes", codes, "--store-dir", str(tmp_path), *extra])
    with pytest.raises(ConfigError, match=named):
        settings_for(args)


def test_a_city_without_its_certificate_starts_nothing(tmp_path: Path, pki_dir: Path) -> None:
    done = subprocess.run(
        _args("--codes", "620200,999999", "--store-dir", str(tmp_path), "--pki-dir", str(pki_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "999999" in done.stderr
    assert not list(tmp_path.glob("city-*.sqlite")), "a store was opened before the refusal"


def _queue_one(url: str, code: str) -> None:
    engine = make_engine(url)
    try:
        create_schema(engine)
        city_services.open_store(engine, code)
        body = pb.SuggestionBatch(
            batch_date="2026-11-20",
            batch_number=1,
            suggestions=[pb.Suggestion(ticket_id="1", category="SVC.INSTALL", content="idea")],
            classified_by="clerk-1",
        )
        city_services.send(engine, body)
    finally:
        engine.dispose()


@pytest.mark.asyncio
async def test_the_cities_link_push_and_stop_together(
    databases: Any, hub_settings_factory: Any, start_hub: Any, pki_dir: Path, tmp_path: Path
) -> None:
    hub = await start_hub(hub_settings_factory(databases("hub")))
    for code in CODES:
        _queue_one(store_url(tmp_path, code), code)
    log = (tmp_path / "cities.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        *_args(
            "--codes", ",".join(CODES), "--store-dir", str(tmp_path),
            "--hub", f"127.0.0.1:{hub.port}", "--pki-dir", str(pki_dir),
            "--heartbeat-seconds", "0.5", "--backoff-initial", "0.05",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def held() -> dict[str, int]:
            with hub.engine.connect() as conn:
                rows = conn.execute(
                    select(Record.city_code, func.count()).group_by(Record.city_code)
                ).all()
            return {code: count for code, count in rows}

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while held() != {code: 1 for code in CODES}:
            assert proc.returncode is None, (tmp_path / "cities.log").read_text()
            assert loop.time() < deadline, f"hub holds {held()} after 60 s"
            await asyncio.sleep(0.1)
        with hub.engine.connect() as conn:
            links = dict(conn.execute(select(CityLink.city_code, CityLink.state)).all())
        assert {code: links.get(code) for code in CODES} == dict.fromkeys(CODES, "connected")

        def delivered() -> dict[str, tuple[str, int]]:
            marks = {}
            for code in CODES:
                engine = make_engine(store_url(tmp_path, code))
                try:
                    snapshot = Outbox(engine).snapshot()
                finally:
                    engine.dispose()
                marks[code] = (snapshot.city_code, snapshot.delivered_seq)
            return marks

        # The hub commits before it answers; the city marks the envelope delivered when the
        # answer arrives, a moment later. Wait for that too, then stop the nodes.
        while delivered() != {code: (code, 1) for code in CODES}:
            assert proc.returncode is None, (tmp_path / "cities.log").read_text()
            assert loop.time() < deadline, f"city stores hold {delivered()} after 60 s"
            await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.wait_for(proc.wait(), 30)
        assert rc == 0, (tmp_path / "cities.log").read_text()
        # Stopping kept every store as it was: nothing to re-send, nothing lost.
        assert delivered() == {code: (code, 1) for code in CODES}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
