"""Alembic environment for the hub store: run by sync.migrate.upgrade at start, or by
alembic's CLI with ``-x url=sqlite:///hub.sqlite``."""

from province_hub.store import METADATA
from sync.migrate import run_env

run_env(METADATA)
