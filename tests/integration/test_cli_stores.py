"""A command given a SQLite store that does not exist: only the commands that make a store
(running a node, `migrate`, `staff add`) create one; every other command refuses the path
with exit 2 naming `database_url` and the file, and leaves no file or folder behind."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.cli import main
from tests.conftest import ROSTER_CODES, DatabaseFactory

CITY = ROSTER_CODES[0]

#: Commands that read or change a store that must already be there (settings flags apart).
REFUSING = {
    "hub figures": ["hub", "figures", "--period", "month", "--start", "2026-11-01"],
    "hub status": ["hub", "status"],
    "hub notices": ["hub", "notices"],
    "hub notice": ["hub", "notice", "--title", "x", "--to", "all"],
    "hub resolve": [
        "hub",
        "resolve",
        "--city",
        CITY,
        "--ticket",
        "1",
        "--resolution",
        "x",
        "--outcome",
        "upheld",
    ],
    "hub trace": ["hub", "trace", "--city", CITY, "--ticket", "1"],
    "hub staff list": ["hub", "staff", "list"],
    "hub staff disable": ["hub", "staff", "disable", "--id", "sup-1"],
    "hub staff set-role": ["hub", "staff", "set-role", "--id", "sup-1", "--role", "admin"],
    "hub backup": ["hub", "backup", "--to", "BACKUP"],
    "city status": ["city", "status", "--code", CITY],
    "city inbox": ["city", "inbox", "--code", CITY],
    "city rebase": ["city", "rebase", "--code", CITY],
    "city staff list": ["city", "staff", "list", "--code", CITY],
    "city staff enable": ["city", "staff", "enable", "--code", CITY, "--id", "leader-1"],
    "city ticket list": ["city", "ticket", "list", "--code", CITY],
    "city report list": ["city", "report", "list", "--code", CITY],
    "city suggestions list": ["city", "suggestions", "list", "--code", CITY],
    "city simulate": ["city", "simulate", "--code", CITY, "--days", "1"],
    "city backup": ["city", "backup", "--code", CITY, "--to", "BACKUP"],
}


@pytest.mark.parametrize("name", sorted(REFUSING))
def test_a_missing_store_is_refused_not_created(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo" / "store.sqlite"
    backup = str(tmp_path / "backup.sqlite")
    argv = [backup if word == "BACKUP" else word for word in REFUSING[name]]
    assert main([*argv, "--database-url", f"sqlite:///{typo}"]) == 2
    err = capsys.readouterr().err
    assert "database_url" in err and str(typo) in err and "Traceback" not in err
    assert not typo.parent.exists(), "no folder (nor store) made for a mistyped path"


@pytest.mark.parametrize(
    "argv",
    [
        ["hub", "status"],
        ["hub", "migrate"],
        ["city", "status", "--code", CITY],
        ["city", "migrate", "--code", CITY],
    ],
)
def test_a_store_path_that_is_a_folder_is_named_as_one(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite said only "unable to open database file"."""
    assert main([*argv, "--database-url", f"sqlite:///{tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert f"database_url: {tmp_path} is a folder; name the store's file in it" in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_named_by_the_environment_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = tmp_path / "nowhere" / "city.sqlite"
    monkeypatch.setenv("FEDSYNC_DATABASE_URL", f"sqlite:///{typo}")
    assert main(["city", "status", "--code", CITY]) == 2
    assert str(typo) in capsys.readouterr().err
    assert not typo.parent.exists()


def test_migrate_and_the_first_account_still_make_a_new_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = f"sqlite:///{tmp_path / 'new' / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", hub]) == 0
    assert main(["hub", "status", "--database-url", hub]) == 0
    city = ["--code", CITY, "--database-url", f"sqlite:///{tmp_path / 'new' / 'city.sqlite'}"]
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    add = ["city", "staff", "add", "--id", "leader-1", "--name", "王主任", "--role", "leader"]
    assert main([*add, "--password-stdin", *city]) == 0
    capsys.readouterr()
    assert main(["city", "staff", "list", *city]) == 0
    assert "leader-1" in capsys.readouterr().out
    hub2 = f"sqlite:///{tmp_path / 'other' / 'hub.sqlite'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    add = ["hub", "staff", "add", "--id", "sup-1", "--name", "李督查", "--role", "supervisor"]
    assert main([*add, "--password-stdin", "--database-url", hub2]) == 0
    assert (tmp_path / "other" / "hub.sqlite").is_file()


@pytest.mark.parametrize("name", sorted(n for n in REFUSING if not n.endswith("backup")))
def test_the_other_tiers_store_is_refused_by_name_and_left_as_it_was(
    name: str, databases: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A hub command given a city's database, or the reverse (one shell holding both tiers'
    FEDSYNC_DATABASE_URL): exit 2 saying which store it is, not Alembic's traceback — and
    the store is not touched."""
    from sqlalchemy import inspect, text

    from city_node.store import create_schema as city_schema
    from province_hub.store import create_schema as hub_schema
    from sync.db import make_engine

    other = "hub" if name.startswith("city") else "city"
    url = databases(f"other-{other}")
    engine = make_engine(url)
    (hub_schema if other == "hub" else city_schema)(engine)

    def held() -> tuple[list[str], list[str]]:
        with engine.connect() as conn:
            version = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
            return version, sorted(inspect(conn).get_table_names())

    before = held()
    try:
        assert main([*REFUSING[name], "--database-url", url]) == 2
        err = capsys.readouterr().err
        assert f"it is a {other} store" in err and "Traceback" not in err, err
        assert held() == before
    finally:
        engine.dispose()


def test_a_store_a_newer_fedsync_migrated_is_refused_naming_that(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import text

    from sync.db import make_engine

    url = f"sqlite:///{tmp_path / 'city.sqlite'}"
    assert main(["city", "migrate", "--code", CITY, "--database-url", url]) == 0
    engine = make_engine(url)
    with engine.begin() as conn:  # as a later release would leave it
        conn.execute(text("UPDATE alembic_version SET version_num = 'c9999'"))
    engine.dispose()
    capsys.readouterr()
    assert main(["city", "status", "--code", CITY, "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "it is a city store a newer fedsync migrated" in err
    assert "run the fedsync release that migrated it" in err


def test_a_deadline_without_an_offset_is_the_federations_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hub notice --deadline 2030-01-01T18:00` is 18:00 where the federation is, as the web
    and the API read it (it was taken as UTC: 02:00 the next day in Lanzhou)."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from province_hub.store import Notice
    from sync.db import make_engine

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    for deadline, timezone, utc_hour in (
        ("2030-01-01T18:00", "Asia/Shanghai", 10),
        ("2030-01-01T18:00", "UTC", 18),
        ("2030-01-01T18:00+08:00", "UTC", 10),  # an offset given is kept
        ("2030-01-01t18:00", "UTC", 18),  # ISO's other separators name a time too
        ("2030-01-01_18:00", "UTC", 18),
    ):
        argv = ["hub", "notice", "--kind", "task", "--title", "盘点", "--to", CITY]
        argv += ["--deadline", deadline, "--timezone", timezone, "--database-url", url]
        assert main(argv) == 0, capsys.readouterr().err
        engine = make_engine(url)
        with engine.connect() as conn:
            stored = conn.execute(
                select(Notice.task_deadline).order_by(Notice.seq.desc()).limit(1)
            ).scalar_one()
        engine.dispose()
        assert stored is not None
        stored = stored if stored.tzinfo else stored.replace(tzinfo=UTC)
        assert stored == datetime(2030, 1, 1, utc_hour, tzinfo=UTC), (deadline, timezone)
    # A day alone is by the end of that day, in the federation's zone.
    argv = ["hub", "notice", "--kind", "task", "--title", "盘点", "--to", CITY]
    argv += ["--deadline", "2030-01-01", "--timezone", "Asia/Shanghai", "--database-url", url]
    assert main(argv) == 0, capsys.readouterr().err
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = conn.execute(
            select(Notice.task_deadline).order_by(Notice.seq.desc()).limit(1)
        ).scalar_one()
    engine.dispose()
    assert stored is not None
    assert stored.replace(tzinfo=UTC) == datetime(2030, 1, 1, 15, 59, tzinfo=UTC)


def test_hub_notice_offers_the_kinds_a_person_composes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    capsys.readouterr()
    for kind in ("reminder", "bogus", "rejection"):
        argv = ["hub", "notice", "--kind", kind, "--title", "x", "--to", CITY]
        assert main([*argv, "--database-url", url]) == 2
        err = capsys.readouterr().err
        assert "use one of announcement, task, standard-answer, finding" in err, err
    argv = ["hub", "notice", "--kind", "standard-answer", "--title", "漫游", "--to", CITY]
    argv += ["--category", "BILL", "--question", "漫游费？", "--answer", "按套餐", "--key", "r"]
    assert main([*argv, "--version", "1", "--database-url", url]) == 0, capsys.readouterr().err


def test_hub_notice_takes_a_standard_answer_under_a_category_of_the_hub_tree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A code the tree (``--categories``) lacks is refused naming it; nothing is sent."""
    from sqlalchemy import func, select

    from province_hub.store import Notice
    from sync.db import make_engine

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    capsys.readouterr()
    argv = ["hub", "notice", "--kind", "standard-answer", "--title", "漫游", "--to", CITY]
    argv += ["--question", "漫游费？", "--answer", "按套餐", "--version", "1"]
    argv += ["--database-url", url]
    assert main([*argv, "--category", "BILL.NOPE"]) == 2
    err = capsys.readouterr().err
    assert "category 'BILL.NOPE' is not in the hub's category tree" in err, err
    # A province with its own tree names its own codes.
    tree = tmp_path / "tree.csv"
    tree.write_text(
        "code,parent,name_zh,name_en,complaint_limit_workdays\nROAM,,漫游,Roaming,5\n", "utf-8"
    )
    assert main([*argv, "--category", "BILL", "--categories", str(tree)]) == 2
    assert "'BILL' is not in" in capsys.readouterr().err
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Notice)).scalar_one() == 0
    engine.dispose()
    assert main([*argv, "--category", "ROAM", "--categories", str(tree)]) == 0
    assert "sent to 1 city" in capsys.readouterr().out


def test_hub_notice_and_resolve_refuse_control_characters_from_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The web's edge refuses them; at the shell the services do, naming the flag's field
    (an escape sequence in a title would rewrite the terminal of whoever lists notices)."""
    from sqlalchemy import func, select

    from province_hub.store import Notice
    from sync.db import make_engine

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    capsys.readouterr()
    notice = ["hub", "notice", "--to", CITY, "--database-url", url]
    for argv, field in (
        ([*notice, "--title", "a\x01b"], "title: contains a control character (U+0001)"),
        ([*notice, "--title", "two\nlines"], "title: contains a control character (U+000A)"),
        ([*notice, "--title", "ok", "--body", "x\x1b[31m"], "body: contains a control"),
        # Blank to the eye, and a second line by another name.
        ([*notice, "--title", "\u200b"], "title"),
        ([*notice, "--title", "\u200b \ufeff"], "title"),
        ([*notice, "--title", "x\u2028y"], "title: contains a line break (U+2028)"),
        ([*notice, "--title", "x\u2029y"], "title: contains a line break (U+2029)"),
        (
            [*notice[:-2], "--title", "ok", "--body", "\ud800", "--database-url", url],
            "is not valid UTF-8 text",  # refused before any command runs
        ),
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert field in err, err
    resolve = ["hub", "resolve", "--city", CITY, "--ticket", "7", "--outcome", "upheld"]
    resolve += ["--force", "--database-url", url, "--resolution", "line1\nline2\x1b[31m"]
    assert main(resolve) == 2
    err = capsys.readouterr().err
    assert "resolution: contains a control character (U+001B)" in err, err
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Notice)).scalar_one() == 0
    engine.dispose()
    # Newlines and tabs stay welcome in a body.
    assert main([*notice, "--title", "ok", "--body", "第一行\n\t第二行"]) == 0


def test_hub_notice_to_given_twice_goes_to_both_and_other_options_twice_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--to 620100 --to 620200` once sent to 620200 alone (the last value won): --to is
    repeatable now, and an option that takes one value, given twice, is refused naming it."""
    from sqlalchemy import select

    from province_hub.store import NoticeDelivery
    from sync.db import make_engine

    url = f"sqlite:///{tmp_path / 'hub.sqlite'}"
    assert main(["hub", "migrate", "--database-url", url]) == 0
    capsys.readouterr()
    argv = ["hub", "notice", "--title", "盘点", "--to", "620100", "--to", "620200,620300"]
    assert main([*argv, "--database-url", url]) == 0, capsys.readouterr().err
    assert "sent to 3 cities" in capsys.readouterr().out
    engine = make_engine(url)
    with engine.connect() as conn:
        cities = sorted(conn.execute(select(NoticeDelivery.city_code)).scalars())
    assert cities == ["620100", "620200", "620300"]
    for twice, flag in (
        (["--title", "a", "--title", "b", "--to", "620100"], "--title"),
        (
            ["--title", "a", "--to", "620100", "--priority", "low", "--priority", "high"],
            "--priority",
        ),
    ):
        with pytest.raises(SystemExit) as exc:
            main(["hub", "notice", *twice, "--database-url", url])
        assert exc.value.code == 2
        assert f"argument {flag}: given twice" in capsys.readouterr().err
    with engine.connect() as conn:
        assert len(conn.execute(select(NoticeDelivery.city_code)).all()) == 3  # nothing more
    engine.dispose()
    assert (
        main(
            [
                "hub",
                "notice",
                "--title",
                "x",
                "--to",
                "all",
                "--to",
                "620100",
                "--database-url",
                url,
            ]
        )
        == 2
    )
    assert "'all' names every city; give it alone, or the codes" in capsys.readouterr().err
    # An empty filter is refused, not taken as none.
    assert main(["hub", "notices", "--kind", "", "--database-url", url]) == 2
    assert "--kind: empty" in capsys.readouterr().err
    assert main(["hub", "notices", "--kind", "task", "--database-url", url]) == 0
    assert main(["hub", "notices", "--database-url", url]) == 0  # no filter: every kind
    assert "盘点" in capsys.readouterr().out


def test_an_unknown_option_is_refused_with_the_sub_commands_usage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """argparse left it to `fedsync`, which showed `usage: fedsync [-h] [-v] COMMAND`."""
    for argv, prog in (
        (
            ["city", "--code", CITY, "ticket", "show", "--id", "1", "--reason", "x"],
            "city ticket show",
        ),
        (["hub", "status", "--bogus"], "hub status"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"fedsync {prog}: error: unrecognized arguments:" in err, err
        assert f"usage: fedsync {prog}" in err, err


@pytest.fixture
def pg_databases(postgres_server_url: str, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """Fresh PostgreSQL databases (a server's database, made empty by its administrator)."""
    factory = DatabaseFactory("postgresql", tmp_path, postgres_server_url)
    try:
        yield factory
    finally:
        factory.drop_all()


@pytest.mark.postgres
@pytest.mark.parametrize("name", sorted(n for n in REFUSING if not n.endswith("backup")))
def test_an_empty_server_database_is_refused_not_made_a_store(
    name: str, pg_databases: DatabaseFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PostgreSQL database made empty for a city (as Docker makes all fifteen) and given
    to the wrong command by a typo: refused naming it, and left empty — it was made into a
    store of the command's tier, which the tier it was meant for then refused."""
    from sqlalchemy import inspect

    from sync.db import make_engine

    url = pg_databases("empty")
    assert main([*REFUSING[name], "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "database_url: the database" in err and "is empty, no store" in err, err
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
    finally:
        engine.dispose()
    tier = name.split()[0]
    code = ["--code", CITY] if tier == "city" else []
    assert main([tier, "migrate", *code, "--database-url", url]) == 0
