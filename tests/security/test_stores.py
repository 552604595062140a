"""Promises of the stores (SQLite and PostgreSQL).

- A database error never carries a statement's parameters (customers' phones, names,
  complaints) into the exception text or the logs.
- A new SQLite store lives in a folder only its owner may enter, and it and its -wal/-shm
  files are readable by the owner only.
- A node warns at start when its store, its private key or the console's session key is
  readable by other users.
"""

from __future__ import annotations

import logging
import stat
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, StatementError

from city_node import domain, tickets
from city_node.app import build
from city_node.context import Actor, CityError, make_context
from city_node.domain import Channel, CustomerTier, Role, TicketKind
from city_node.services import open_store
from city_node.store import create_schema
from city_node.ticket_store import insert_tickets
from sync.db import UnitOfWork, make_engine
from tests.conftest import DatabaseFactory

PHONE = "13912345678"
NAME = "王秘密"


@pytest.fixture
def ctx(databases: Any) -> Any:
    engine = make_engine(databases("pii"))
    create_schema(engine)
    open_store(engine, "620100")
    yield make_context(engine, "620100")
    engine.dispose()


def _shown(exc: BaseException) -> str:
    """Everything a log line of the exception would show (message, chain, traceback)."""
    return "".join(traceback.format_exception(exc))


def test_a_failed_statement_does_not_show_its_parameters(ctx: Any, caplog) -> None:
    with caplog.at_level(logging.DEBUG), ctx.engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (phone VARCHAR(20))"))
        # Fails whatever the values (no such column): without hide_parameters SQLAlchemy
        # appends "[parameters: ('13912345678', ...)]" to the message.
        with pytest.raises(DBAPIError) as refused:
            conn.execute(
                text("INSERT INTO probe (phone, missing) VALUES (:phone, :name)"),
                {"phone": PHONE, "name": NAME},
            )
    assert "INSERT INTO probe" in str(refused.value)  # the statement is still named
    assert "[parameters" not in str(refused.value)  # nothing of the values is rendered
    for secret in (PHONE, NAME):
        assert secret not in _shown(refused.value) and secret not in caplog.text


@pytest.mark.postgres
def test_a_nul_character_in_a_ticket_does_not_leak_the_customer(
    postgres_server_url: str, tmp_path: Path, caplog
) -> None:
    # PostgreSQL only: it refuses NUL characters in text, which SQLite stores.
    factory = DatabaseFactory("postgresql", tmp_path, postgres_server_url)
    engine = make_engine(factory("nul"))
    create_schema(engine)
    open_store(engine, "620100")
    ctx = make_context(engine, "620100")
    actor = Actor("op-1", Role.OPERATOR_JUNIOR)
    new = tickets.NewTicket(
        "complaint", "NET.BROADBAND", "phone", PHONE, NAME, "ordinary", "a\x00b"
    )
    # The service refuses the NUL itself, naming the field, before any statement...
    with pytest.raises(CityError, match=r"content: contains a control character \(U\+0000\)"):
        tickets.register(ctx, actor, new)
    # ...and a statement the database refuses all the same (a ticket written past the
    # service's checks) does not show the customer either.
    ticket = domain.register(
        ticket_id=0,
        kind=TicketKind.COMPLAINT,
        category="NET.BROADBAND",
        channel=Channel.PHONE,
        customer_phone=PHONE,
        customer_name=NAME,
        tier=CustomerTier.ORDINARY,
        content="a\x00b",
        registered_at=datetime.now(UTC),
        actor=actor.id,
        role=actor.role,
        categories=ctx.categories,
        calendar=ctx.calendar,
    )
    try:
        with (
            caplog.at_level(logging.DEBUG),
            pytest.raises(StatementError) as refused,
            UnitOfWork(engine) as uow,
        ):
            insert_tickets(uow.conn, actor, [ticket], [False])
    finally:
        engine.dispose()
        factory.drop_all()
    shown = _shown(refused.value)
    assert "NUL" in shown  # the reason is kept...
    for secret in (PHONE, NAME):  # ...the customer is not
        assert secret not in shown and secret not in caplog.text


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_store_is_private(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "city"
    engine = make_engine(f"sqlite:///{folder / 'city.sqlite'}")
    try:
        create_schema(engine)
        with engine.begin() as conn:  # a write, so the -wal and -shm files exist
            open_store(engine, "620100")
            conn.execute(text("SELECT 1"))
        files = [folder / "city.sqlite", folder / "city.sqlite-wal", folder / "city.sqlite-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert _mode(folder) == _mode(folder.parent) == 0o700
    finally:
        engine.dispose()


def test_a_node_warns_about_files_others_can_read(
    tmp_path: Path, pki_dir: Path, city_settings_factory, caplog
) -> None:
    store = tmp_path / "city.sqlite"
    key = tmp_path / "console.key"
    key.write_text("k" * 64)
    store.touch()
    store.chmod(0o644)
    key.chmod(0o644)
    settings = city_settings_factory(
        "620100", f"sqlite:///{store}", 1, http_port=1, secret_key_file=key
    )
    with caplog.at_level(logging.WARNING, logger="sync.filemodes"):
        node = build(settings)
    node.engine.dispose()
    warned = [r.getMessage() for r in caplog.records if "readable by other users" in r.getMessage()]
    assert any(str(store) in w and "chmod 600" in w for w in warned), warned
    assert any(str(key) in w for w in warned), warned
    caplog.clear()
    store.chmod(0o600)
    key.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="sync.filemodes"):
        node = build(settings)
    node.engine.dispose()
    assert not [r for r in caplog.records if str(tmp_path) in r.getMessage()]
