"""Private files: created readable by their owner only, and a warning when they are not.

A node's SQLite store holds customers' phones and names and the staff's password hashes; its
private key and the console's session key let anyone who reads them act as the node. Each is
created 0600 in a 0700 folder; one found readable by others (copied in, restored from a
backup, created by an older version) is reported at start, with the command that fixes it,
rather than silently re-moded: the operator may have a reason (a backup agent's group).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700; an existing folder is left as it is."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=PRIVATE_DIR)
        # mkdir's mode is cut by the umask; a private folder must not depend on it.
        os.chmod(folder, PRIVATE_DIR)


def private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 (in a private folder) unless it exists."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))


def exposed(path: Path) -> bool:
    """Whether ``path`` exists and its group or other users may read it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def warn_if_exposed(paths: Iterable[tuple[Path, str]]) -> list[Path]:
    """Log a warning for each (path, what) readable by others; return those paths."""
    found = []
    for path, what in paths:
        if exposed(path):
            mode = stat.S_IMODE(path.stat().st_mode)
            log.warning(
                "%s %s is readable by other users (mode %04o); run: chmod 600 %s",
                what,
                path,
                mode,
                path,
            )
            found.append(path)
    return found


def sqlite_files(database: str | None) -> list[Path]:
    """A SQLite store's file and its -wal and -shm companions (None/memory: none)."""
    if not database or database == ":memory:":
        return []
    base = Path(database)
    return [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")]
