"""``fedsync hub notices`` and the accepted records of ``fedsync hub status --json`` (what
``fedsync demo`` reads the hub through): receipts written by a real city store, ingested by
the hub, counted per notice; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from city_node import services as city_services
from city_node.context import Actor
from city_node.domain import Role
from city_node.store import create_schema as create_city_schema
from province_hub import services
from province_hub.status import link_status, notice_progress
from province_hub.store import create_schema
from sync.cli import main
from sync.db import make_engine
from sync.outbox import OutboxRow
from sync.pb.fedsync.v1 import federation_pb2 as pb
from tests.conftest import ROSTER_CODES

LEADER = Actor("leader-1", Role.LEADER)

CITY, OTHER = ROSTER_CODES[0], ROSTER_CODES[1]


def _city_answers(tmp_path: Path, notice: pb.Notice, *actions: str) -> list[pb.Envelope]:
    """A city stores ``notice`` and records ``actions`` on it: its outbox envelopes."""
    engine = make_engine(f"sqlite:///{tmp_path / 'city.sqlite'}")
    try:
        create_city_schema(engine)
        city_services.open_store(engine, CITY)
        assert city_services.accept_notice(engine, notice)
        for action in actions:
            note = "不同意" if action == "objection" else ""
            city_services.record_receipt(
                engine, notice_seq=notice.seq, action=action, actor=LEADER, note=note
            )
        with engine.connect() as conn:
            rows = conn.execute(select(OutboxRow.envelope).order_by(OutboxRow.seq)).scalars()
            return [pb.Envelope.FromString(r) for r in rows]
    finally:
        engine.dispose()


@pytest.fixture
def hub(databases: Any) -> Any:
    engine = make_engine(databases("hub"))
    create_schema(engine)
    yield engine
    engine.dispose()


def test_notice_progress_counts_what_the_cities_did(hub: Any, tmp_path: Path) -> None:
    announcement = services.send_notice(
        hub,
        notice=pb.Notice(kind=pb.ANNOUNCEMENT, title="春节值班安排", targets=[CITY, OTHER]),
        roster_codes=ROSTER_CODES,
    )
    finding = services.send_notice(
        hub,
        notice=pb.Notice(kind=pb.FINDING, title="质检通报", targets=[CITY]),
        roster_codes=ROSTER_CODES,
    )
    services.confirm_cursor(hub, city_code=CITY, cursor=finding.seq)
    envelopes = _city_answers(tmp_path, announcement, "read", "objection")
    services.ingest_batch(
        hub, city_code=CITY, envelopes=envelopes, tz_name="Asia/Shanghai", max_batch=100
    )

    assert notice_progress(hub) == [
        {
            "seq": announcement.seq,
            "kind": "announcement",
            "title": "春节值班安排",
            "targets": 2,
            "delivered": 1,
            "read": 1,
            "done": 0,
            "objections": 1,
        },
        {
            "seq": finding.seq,
            "kind": "finding",
            "title": "质检通报",
            "targets": 1,
            "delivered": 1,
            "read": 0,
            "done": 0,
            "objections": 0,
        },
    ]
    assert [n["seq"] for n in notice_progress(hub, kind="ANNOUNCEMENT")] == [announcement.seq]
    rows = {r["city_code"]: r for r in link_status(hub, ROSTER_CODES)}
    assert rows[CITY]["accepted"] == {"notice_receipt": 2} == rows[CITY]["records"]
    assert rows[OTHER]["accepted"] == {}


def test_hub_notices_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    # A finding names the city it is about and where it comes from.
    about = ["--about-city", CITY, "--source", "qa"]
    for title, kind, extra in (("全省公告", "announcement", []), ("盘点积压", "finding", about)):
        args = ["hub", "notice", "--title", title, "--kind", kind, *extra, "--to", "all"]
        args += ["--database-url", url]
        assert main(args) == 0
    capsys.readouterr()
    assert main(["hub", "notices", "--kind", "announcement", "--json", "--database-url", url]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["title"], row["targets"], row["delivered"], row["read"]) == ("全省公告", 14, 0, 0)
    assert main(["hub", "notices", "--database-url", url]) == 0
    text = capsys.readouterr().out
    assert "全省公告" in text and "盘点积压" in text and "finding" in text
    assert main(["hub", "notices", "--kind", "memo", "--database-url", url]) == 2
    assert "--kind 'memo'" in capsys.readouterr().err


@pytest.mark.parametrize("to", [None, ",", " "])
def test_hub_notice_names_its_cities_or_says_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], to: str | None
) -> None:
    # Every city only when the shell says "--to all" (the web's confirmation step): a
    # forgotten or empty --to is refused naming the flag, and nothing is sent.
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    capsys.readouterr()
    args = ["hub", "notice", "--title", "全省公告", "--database-url", url]
    assert main([*args, *([] if to is None else ["--to", to])]) == 2
    assert "--to" in capsys.readouterr().err
    assert notice_progress(make_engine(url)) == []
    assert main([*args, "--to", CITY]) == 0
    assert "sent to 1 city" in capsys.readouterr().out
    assert [row["targets"] for row in notice_progress(make_engine(url))] == [1]
