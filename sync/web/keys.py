"""A console's session-signing key file.

Apart from :mod:`sync.web.server` so that a node can check its key (and refuse a bad one)
before it imports the web stack.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from sync.config import ConfigError
from sync.filemodes import private_dir

_KEY_BYTES = 32


def load_secret_key(path: Path, *, setting_name: str = "secret_key_file") -> bytes:
    """The console's session-signing key from ``path``, created on first start.

    Kept in a file (not generated per start) so staff stay signed in across a restart;
    delete the file to sign everyone out.
    """
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        private_dir(path.parent)
        key = secrets.token_hex(_KEY_BYTES).encode()
        # O_EXCL: two processes starting at once must not each write a different key.
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key + b"\n")
            return key
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"{setting_name} {path}: cannot read it ({exc.strerror})") from None
    if len(key) < _KEY_BYTES:
        raise ConfigError(
            f"{setting_name} {path}: the key has {len(key)} bytes; use at least {_KEY_BYTES}"
        )
    return key
