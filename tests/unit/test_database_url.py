"""A store URL fedsync cannot open is refused naming the setting, never a traceback."""

from __future__ import annotations

import pytest

from sync.cli import main

BAD = [
    "mysql://fedsync@db/hub",
    "postgres://fedsync:s3cret@db/hub",  # SQLAlchemy 2 has no postgres:// alias
    "postgresql+psycopg2://fedsync@db/hub",  # a driver fedsync does not ship
    "sqllite:///hub.sqlite",
    "hub.sqlite",
]


@pytest.mark.parametrize("url", BAD)
@pytest.mark.parametrize(
    "command",
    [["hub", "staff", "list"], ["hub", "status"], ["city", "staff", "list", "--code", "620100"]],
)
def test_unusable_database_url_exits_2_naming_it(
    url: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--database-url", url]) == 2
    err = capsys.readouterr().err
    assert "database_url" in err and "postgresql+psycopg://" in err
    assert "Traceback" not in err and "s3cret" not in err


def test_the_urls_fedsync_ships_drivers_for_pass() -> None:
    from city_node.settings import CitySettings
    from province_hub.settings import HubSettings

    for url in (
        "sqlite:///fedsync-data/hub.sqlite",
        "sqlite+pysqlite:///hub.sqlite",
        "postgresql://fedsync@db/hub",
        "postgresql+psycopg://fedsync:pw@db/hub",
    ):
        assert HubSettings(database_url=url).database_url == url
        assert CitySettings(code="620100", database_url=url).database_url == url
