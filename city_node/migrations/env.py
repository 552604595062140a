"""Alembic environment for the city store: run by sync.migrate.upgrade at start, or by
alembic's CLI with ``-x url=sqlite:///city.sqlite``."""

from city_node.store import METADATA
from sync.migrate import run_env

run_env(METADATA)
