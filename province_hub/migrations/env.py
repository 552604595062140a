"""Alembic environment for the hub store; run through sync.migrate (or alembic's CLI with
``-x url=...``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from province_hub.store import METADATA


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=list(METADATA),
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # alembic CLI: alembic -c ... -x url=sqlite:///hub.sqlite upgrade head
    url = context.get_x_argument(as_dictionary=True)["url"]
    with create_engine(url).begin() as conn:
        _run(conn)
