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
    max_message_mb: int = setting(
        32,
        "largest gRPC message accepted, MiB (a city cuts its batches to fit; 32 MiB holds "
        "5000 of the largest envelopes that come by the thousands, see "
        "benchmarks/message_size.py)",
    )
    max_calls_per_city: int = setting(
        4,
        "calls (Hello, Push, ListHeld) one city may have in flight at once; more are refused "
        "with RESOURCE_EXHAUSTED, bounding the memory a city can make the hub hold",
    )
    notice_poll_seconds: float = setting(
        1.0, "how often notice streams look for notices created by other processes or replicas"
    )
    db_workers: int = setting(0, "threads doing database work (0: 1 for SQLite, 8 for PostgreSQL)")
    link_silent_seconds: float = setting(
        30.0,
        "a connected city not heard from for this long shows as silent "
        "(3 heartbeat intervals of the cities' default 10 s)",
    )

    def __post_init__(self) -> None:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"listen {self.listen!r} must be host:port")
        if self.max_batch < 1:
            raise ConfigError("max_batch must be at least 1")
        if self.max_message_mb < 1:
            raise ConfigError("max_message_mb must be at least 1")
        if self.max_calls_per_city < 1:
            raise ConfigError("max_calls_per_city must be at least 1")
