"""Engines for SQLite (the default, one file per node) and PostgreSQL (by URL).

SQLite is opened in WAL mode with ``synchronous=FULL`` (an ack means the commit is on disk,
even across power loss) and every transaction starts with ``BEGIN IMMEDIATE`` so that two
writers queue on the database lock instead of failing when a reader upgrades (the recipe in
SQLAlchemy's pysqlite dialect docs, "Serializable isolation / Savepoints / Transactional DDL").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Table,
    TypeDecorator,
    create_engine,
    event,
    exc,
    inspect,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from sync.filemodes import private_file, sqlite_files, warn_if_exposed


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 5, busy_timeout: float = 60.0) -> Engine:
    """An engine for ``url``; a new SQLite file is created 0600 in a 0700 folder.

    Statements' parameters are kept out of errors and logs (``hide_parameters``): they hold
    customers' phones, names and complaints, and a failed statement's message ends up in
    logs and, unhandled, in responses. The SQL text itself stays, for diagnosis.

    ``busy_timeout`` is how long a SQLite statement waits for another writer's lock (seconds);
    a console answering people uses a short one and says "busy" rather than hang.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            # SQLite creates its -wal and -shm files with the main file's mode, so making
            # the main file private before SQLite first opens it covers all three.
            private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": busy_timeout}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Hand transaction control to SQLAlchemy's "begin" event below.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # Writers take the lock up front so two of them queue instead of failing on the
            # read-to-write upgrade; readers begin deferred, so WAL lets them run beside a
            # writer (a long report query must not stall the operators' writes).
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Plain postgresql:// would pick psycopg2, which we do not ship.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url``; ``None`` for a store in memory, a SQLite URI
    (``?uri=true``) or one that is not SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query.get("uri"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` when it does not exist; ``None`` when it does, or the
    store is in memory, a SQLite URI (``?uri=true``) or not SQLite."""
    path = sqlite_file(url)
    return None if path is None or path.exists() else path


def empty_server_database(url: str) -> str | None:
    """The name of the database a server ``url`` (PostgreSQL) names when it holds no table
    at all; ``None`` when it holds some, cannot be reached (the command then says why), or
    the store is SQLite (:func:`missing_sqlite_file` judges that)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return None
    engine = create_engine(url, hide_parameters=True, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            empty = not inspect(conn).get_table_names()
    except exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()
    return (parsed.database or "") if empty else None


def warn_if_store_exposed(engine: Engine) -> list[Path]:
    """Warn (log) when ``engine``'s SQLite files are readable by others; those paths."""
    if not is_sqlite(engine):
        return []
    return warn_if_exposed((path, "store") for path in sqlite_files(engine.url.database))


#: Execution option marking a connection that will write (``BEGIN IMMEDIATE`` on SQLite).
WRITE_OPTION = "fedsync_write"


def write_connection(engine: Engine) -> Connection:
    """A connection for a write transaction (every write goes through one of these)."""
    return engine.connect().execution_options(**{WRITE_OPTION: True})


class UnitOfWork:
    """One database transaction for one use case: ``with UnitOfWork(engine) as uow: ...``.

    Nothing is committed unless the use case calls ``uow.commit()``; leaving the block
    otherwise rolls back. Helpers take ``uow.conn`` and never commit themselves, so an outbox
    row always lands in the same transaction as the change that caused it.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> UnitOfWork:
        self.conn = write_connection(self._engine)
        self._tx = self.conn.begin()
        return self

    def commit(self) -> None:
        self._tx.commit()

    def rollback(self) -> None:
        self._tx.rollback()

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Bulk insert, silently skipping rows whose primary key already exists."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "postgresql":
        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - only the two engines above are supported
        raise RuntimeError(f"unsupported database {conn.dialect.name}")


#: How SQLAlchemy's SQLite dialect stores DateTime; rows written by ``bulk_insert`` must read
#: back through the ORM exactly like rows written by it.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def datetime_param(conn: Connection, moment: datetime) -> Any:
    """A UTC datetime as ``bulk_insert`` must pass it to this connection's driver."""
    if conn.dialect.name == "sqlite":
        return moment.astimezone(UTC).strftime(_SQLITE_DATETIME)
    return moment


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)


def timestamp_param(conn: Connection, seconds: int, nanos: int) -> Any:
    """A protobuf Timestamp's instant as ``bulk_insert`` must pass it (the hot-path variant
    of ``datetime_param``, called once per stored envelope: on SQLite straight from a naive
    epoch to the text, and ``timedelta`` built positionally — half the cost of keywords)."""
    if conn.dialect.name == "sqlite":
        return (_NAIVE_EPOCH + timedelta(0, seconds, nanos // 1000)).isoformat(" ", "microseconds")
    return _EPOCH + timedelta(0, seconds, nanos // 1000)


def driver_mark(conn: Connection) -> str:
    """The driver's positional placeholder (``?`` for sqlite3, ``%s`` for psycopg), for SQL
    sent straight through ``exec_driver_sql``."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def bulk_insert(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert positional rows straight through the driver: ``COPY`` on PostgreSQL,
    ``executemany`` on SQLite.

    For the hub's ingest hot path only: Core ``insert()`` spends more time per row processing
    bind parameters than the database spends storing it (measured: about half the rows per
    second on SQLite), and on PostgreSQL ``COPY`` (psycopg 3's ``cursor.copy``) beats
    executemany by a quarter of the hub's CPU. It runs in the connection's transaction.
    Values must already be in driver form (see ``datetime_param``).
    """
    if not rows:
        return
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join([driver_mark(conn)] * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware on every engine.

    SQLite has no time zone type: SQLAlchemy stores the wall-clock text and hands back naive
    values, so an aware value in another zone would compare wrongly against stored ones.
    Binding converts to UTC (naive input is refused, never guessed) and results get UTC
    attached; on SQLite the stored text then sorts in time order, which range queries and
    ``closed_at <= deadline`` comparisons in SQL rely on.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware time")
        moment = value.astimezone(UTC)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
