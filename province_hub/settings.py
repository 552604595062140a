"""The hub process's settings (flags, FEDSYNC_* environment, TOML ``[hub]``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sync.config import ConfigError, setting
from sync.periods import DEFAULT_TIMEZONE


@dataclass(frozen=True)
class HubSettings:
    listen: str = setting(
        "127.0.0.1:7443", "gRPC address host:port to listen on (port 0: any free)"
    )
    database_url: str = setting(
        "sqlite:///fedsync-data/hub.sqlite",
        "SQLAlchemy URL of the hub store (SQLite or PostgreSQL)",
    )
    pki_dir: Path = setting(
        Path("fedsync-pki"), "directory of ca.crt, hub.crt, hub.key and crl.pem (fedsync pki init)"
    )
    roster: Path | None = setting(None, "roster CSV (code,name_zh,name_en,...); default: Gansu")
    timezone: str = setting(DEFAULT_TIMEZONE, "federation time zone; periods are cut in it")
    max_batch: int = setting(5000, "most envelopes accepted in one Push")
    max_message_mb: int = setting(64, "largest gRPC message accepted, MiB")
    notice_poll_seconds: float = setting(
        1.0, "how often notice streams look for notices created by other processes or replicas"
    )
    db_workers: int = setting(0, "threads doing database work (0: 1 for SQLite, 8 for PostgreSQL)")
    http_host: str = setting("127.0.0.1", "address the supervisor web (pages and /api/v1) binds")
    http_port: int = setting(0, "port of the supervisor web; 0 leaves it off")
    secret_key_file: Path = setting(
        Path("fedsync-data/hub.web-key"),
        "file with the supervisor web's session-signing key, created (random, mode 0600) "
        "when missing",
    )
    http_secure_cookies: bool = setting(
        False, "send supervisor web cookies over HTTPS only (when TLS or a TLS proxy fronts it)"
    )

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"listen {self.listen!r} must be host:port")
        if not 0 <= self.http_port <= 65535:
            raise ConfigError(f"http_port {self.http_port}: give a port 1-65535, or 0 for off")
        if self.max_batch < 1:
            raise ConfigError("max_batch must be at least 1")
