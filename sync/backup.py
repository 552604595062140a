"""``fedsync hub backup`` and ``fedsync city backup``: a consistent copy of a running store.

SQLite: the online backup API copies the store in one step, inside one read transaction, so
the copy is the store as of one commit even while the node keeps writing (WAL readers do not
block writers). The copy holds what the store holds (customers' phones and names, password
hashes): it is created 0600, never over an existing file, and checked before it is called
done. PostgreSQL has its own tools for that (``pg_dump``, base backups with WAL archiving);
a copy made here would be neither better nor what a database administrator expects.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sync.filemodes import PRIVATE_FILE


class BackupError(ValueError):
    """The backup cannot be made; the message says what to correct."""


@dataclass(frozen=True)
class BackupResult:
    source: Path
    target: Path
    size_bytes: int


def _sqlite_source(database_url: str) -> Path:
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise BackupError("database_url: not a database URL") from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        raise BackupError(
            f"the store is PostgreSQL (database {url.database!r}): back it up with PostgreSQL's "
            "own tools, e.g. pg_dump --format=custom --file FILE DATABASE (or base backups "
            "with WAL archiving); this command copies SQLite stores"
        )
    if backend != "sqlite":
        raise BackupError(f"database_url: {backend!r} stores cannot be backed up here")
    if not url.database or url.database == ":memory:":
        raise BackupError("database_url: an in-memory SQLite store has nothing to back up")
    source = Path(url.database)
    if not source.is_file():
        raise BackupError(f"the store {source} does not exist (check --database-url / --code)")
    return source


def _check_target(target: Path, source: Path) -> None:
    if str(target).strip() == "":
        raise BackupError("--to: name the file to write")
    if target.is_dir():
        raise BackupError(f"--to {target}: is a folder; name a file in it")
    if target.exists() or target.is_symlink():
        raise BackupError(f"--to {target}: exists already; a backup never overwrites a file")
    if not target.parent.is_dir():
        raise BackupError(f"--to {target}: the folder {target.parent} does not exist")
    if target.resolve() == source.resolve():
        raise BackupError(f"--to {target}: is the store itself")


#: What ``PRAGMA quick_check`` says of a NOT NULL column holding NULL.
_NULL_VALUE = re.compile(r"NULL value in ([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")


def _check_problems(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA quick_check`` finds wrong in ``conn``'s database (empty: nothing).

    SQLite 3.40 (Debian 12's, which Python's ``sqlite3`` loads there) reports "NULL value
    in T.C" for every row of a ``WITHOUT ROWID`` table whose NOT NULL columns come before
    its primary key's though no row holds a NULL. The hub's tables have their key first
    since h0009; a store of another shape (not migrated yet, a city's) is still read right:
    such a report is believed only when a query finds the NULL; every other finding stands
    as said."""
    problems = []
    # Up to 100,000 findings, not SQLite's default 100: false ones must not crowd out a real one.
    for (said,) in conn.execute("PRAGMA quick_check(100000)"):
        if said == "ok":
            continue
        null = _NULL_VALUE.fullmatch(said)
        if null is not None:
            table, column = null.groups()
            # typeof(), not IS NULL: SQLite answers "col IS NULL" of a NOT NULL column with
            # false without reading a row. The names are SQLite's own, from its report.
            query = f'SELECT 1 FROM "{table}" WHERE typeof("{column}") = \'null\' LIMIT 1'
            found = conn.execute(query).fetchone()
            if found is None:
                continue
        problems.append(said)
    return problems


def backup_sqlite(database_url: str, target: Path) -> BackupResult:
    """Copy the SQLite store of ``database_url`` to ``target`` (new file, mode 0600)."""
    source = _sqlite_source(database_url)
    _check_target(target, source)
    try:
        # O_EXCL: a file created meanwhile is not overwritten either. The mode is set again
        # after, as the umask may have cut it (never widened: 0600 is the most it gets).
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        raise BackupError(
            f"--to {target}: exists already; a backup never overwrites a file"
        ) from None
    except OSError as exc:
        raise BackupError(f"--to {target}: cannot be created ({exc.strerror})") from None
    os.chmod(target, PRIVATE_FILE)
    done = False
    try:
        # Read-only: a backup must not create a store where none was, nor write to one.
        with (
            contextlib.closing(
                sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
            ) as src,
            contextlib.closing(sqlite3.connect(target)) as dst,
        ):
            src.backup(dst)  # every page in one step: one read transaction, one commit's view
            # One self-contained file: no -wal beside it to copy or forget.
            dst.execute("PRAGMA journal_mode=DELETE")
            problems = _check_problems(dst)
            if problems:
                raise BackupError(f"the copy in {target} failed its check: {problems[0]}")
        done = True
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the store {source} could not be copied: {exc}") from None
    finally:
        if not done:
            with contextlib.suppress(OSError):
                target.unlink()
    return BackupResult(source=source, target=target, size_bytes=target.stat().st_size)


#: The first letter of each store's schema revisions (``c0010``, ``h0010``).
_REVISION_LETTER = {"city store": "c", "hub store": "h"}


def _schema_revision(source: Path) -> str | None:
    """The store's recorded schema revision, read without writing; None when it has none."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        ) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return None  # not a store at all, or none recorded: the copy's check says the rest
    return None if row is None else str(row[0])


def backup_command(what: str, database_url: str, target: str) -> int:
    """``fedsync hub|city backup --to FILE``: copy the store, say where; a refusal is a
    ``ConfigError`` (exit 2, its message naming what is wrong)."""
    from sync.config import ConfigError

    if not target.strip():  # Path("") is the current folder
        raise ConfigError("--to: name the file to write")
    try:
        letter = _REVISION_LETTER.get(what)
        revision = _schema_revision(_sqlite_source(database_url))
        if letter and revision and not revision.startswith(letter):
            # A copy filed as this tier's backup would be restored in the wrong place.
            other = next((w for w, c in _REVISION_LETTER.items() if revision[:1] == c), None)
            raise BackupError(
                f"the store at database_url is {'a ' + other if other else 'not a ' + what} "
                f"(schema revision {revision!r}), not a {what}: check --database-url"
            )
        done = backup_sqlite(database_url, Path(target))
    except BackupError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{what} {done.source} copied to {done.target} ({done.size_bytes} bytes, mode 0600)")
    return 0


def restore_sqlite(database_url: str, source: Path) -> BackupResult:
    """Put the copy ``source`` in place of the SQLite store of ``database_url`` (created,
    mode 0600, when there is none), with SQLite's backup API into the store itself.

    Never by copying files: a store that was not closed cleanly keeps its last commits in
    ``STORE-wal``, and a copy laid over the store file beside that WAL reads as a mix of the
    two (SQLite cannot tell the WAL belongs to the old file): indexes disagree with their
    tables, ticket numbers are given twice, reads fail. Opened by SQLite, the old store's WAL
    is settled first, then every page is replaced in one write transaction and folded into
    the store file, so no WAL is left for anything to misread."""
    target = _sqlite_target(database_url)
    if not source.is_file():
        raise BackupError(f"--from {source}: no such file")
    if target.exists() and source.resolve() == target.resolve():
        raise BackupError(f"--from {source}: is the store itself")
    with contextlib.closing(
        sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    ) as src:
        try:
            problems = _check_problems(src)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"--from {source}: not a store SQLite can read ({exc})") from None
        if problems:
            raise BackupError(f"--from {source}: the copy fails its check: {problems[0]}")
        if not target.exists():
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            except OSError as exc:
                raise BackupError(
                    f"the store {target} cannot be created ({exc.strerror})"
                ) from None
        os.chmod(target, PRIVATE_FILE)
        try:
            with contextlib.closing(sqlite3.connect(target, timeout=30)) as dst:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=WAL")
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"the store {target} could not be replaced: {exc}") from None
    return BackupResult(source=source, target=target, size_bytes=target.stat().st_size)


def _sqlite_target(database_url: str) -> Path:
    """The SQLite file ``database_url`` names (it may not exist yet), or ``BackupError``."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise BackupError("database_url: not a database URL") from None
    if url.get_backend_name() == "postgresql":
        raise BackupError(
            f"the store is PostgreSQL (database {url.database!r}): restore it with PostgreSQL's "
            "own tools, e.g. pg_restore --dbname DATABASE FILE into an empty database; this "
            "command restores SQLite stores"
        )
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError("database_url: name the SQLite store's file")
    target = Path(url.database)
    if target.is_dir():
        raise BackupError(f"database_url: {target} is a folder; name the store's file in it")
    if not target.parent.is_dir():
        raise BackupError(f"database_url: the folder {target.parent} does not exist")
    return target


def restore_command(what: str, database_url: str, source: str, *, yes: bool) -> int:
    """``fedsync hub|city restore --from FILE [--yes]``: check the copy is this tier's store,
    say what would be replaced, and with ``yes`` replace it (exit 0); without, nothing
    changes (exit 1). A refusal is a ``ConfigError`` (exit 2)."""
    from sync.config import ConfigError

    if not source.strip():
        raise ConfigError("--from: name the backup file")
    copy = Path(source)
    try:
        target = _sqlite_target(database_url)
        letter = _REVISION_LETTER[what]
        revision = _schema_revision(copy) if copy.is_file() else None
        if copy.is_file() and not (revision or "").startswith(letter):
            said = f"schema revision {revision!r}" if revision else "no schema revision"
            raise BackupError(f"--from {copy}: is not a {what} ({said}); check the file")
        if not yes:
            if not copy.is_file():
                raise BackupError(f"--from {copy}: no such file")
            state = "replaces the store" if target.exists() else "creates the store"
            print(
                f"{copy} ({what}, schema revision {revision}) {state} {target}; re-run with "
                "--yes to do it (stop the node first)"
            )
            return 1
        done = restore_sqlite(database_url, copy)
    except BackupError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{what} {done.target} restored from {done.source} ({done.size_bytes} bytes, mode 0600)")
    return 0


def add_restore_options(parser: argparse.ArgumentParser) -> None:
    """``--from FILE`` and ``--yes`` of ``hub restore`` and ``city restore``."""
    parser.add_argument(
        "--from", dest="source", required=True, metavar="FILE", help="the backup to restore"
    )
    parser.add_argument(
        "--yes", action="store_true", help="really replace the store (otherwise say what, exit 1)"
    )
