"""A database URL may carry a password: settings declared ``secret`` never show it in
``repr`` (what a log line or a traceback prints), nor in ``--help``."""

from __future__ import annotations

import argparse

import pytest

from city_node.settings import CitySettings
from province_hub.settings import HubSettings
from sync.config import add_arguments, resolve
from sync.db import make_engine

URL = "postgresql+psycopg://fedsync:s3cret-pw@db.example:5432/city"


@pytest.mark.parametrize(("cls", "section"), [(CitySettings, "city"), (HubSettings, "hub")])
def test_a_database_password_is_not_in_repr(
    cls: type[CitySettings] | type[HubSettings], section: str
) -> None:
    settings = resolve(
        cls,
        flags={"database_url": URL, "code": "620100"},
        section=section,
        environ={},
    )
    assert settings.database_url == URL  # still there for the engine
    assert "s3cret-pw" not in repr(settings)
    assert "s3cret-pw" not in str(settings)


@pytest.mark.parametrize("cls", [CitySettings, HubSettings])
def test_help_names_the_setting_without_its_value(cls: type) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, cls)
    text = parser.format_help()
    assert "--database-url" in text
    assert "FEDSYNC_DATABASE_URL" in text
    assert "s3cret" not in text


def test_the_engine_hides_the_password_too() -> None:
    engine = make_engine(URL)
    try:
        assert "s3cret-pw" not in repr(engine)
        assert "s3cret-pw" not in str(engine.url)
    finally:
        engine.dispose()
