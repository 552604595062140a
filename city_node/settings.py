"""The city node process's settings (flags, FEDSYNC_* environment, TOML ``[city]``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sync.config import (
    ConfigError,
    check_address,
    check_database_url,
    check_timezone,
    setting,
    trusted_proxies,
)
from sync.periods import DEFAULT_TIMEZONE
from sync.roster import is_city_code, load_roster


@dataclass(frozen=True)
class CitySettings:
    code: str = setting("", "this city's six-digit code (required), e.g. 620100")
    roster: Path | None = setting(
        None, "roster CSV the code must be on (code,name_zh,name_en,...); default: Gansu"
    )
    hub: str = setting("127.0.0.1:7443", "the province hub's gRPC address host:port")
    hub_server_name: str = setting(
        "", "name to verify on the hub certificate when it differs from the address's host"
    )
    database_url: str = setting(
        "",
        "SQLAlchemy URL of the city store; default sqlite:///fedsync-data/city-CODE.sqlite",
        secret=True,  # a PostgreSQL URL may hold a password: never in repr or logs
    )
    pki_dir: Path = setting(
        Path("fedsync-pki"),
        "directory of ca.crt, crl.pem (the hub's certificate is checked against it) and "
        "cities/CODE.crt, cities/CODE.key",
    )
    timezone: str = setting(DEFAULT_TIMEZONE, "federation time zone; periods are cut in it")
    batch_size: int = setting(
        5000, "most envelopes per Push (the hub's max_batch caps it; 16 MiB per Push at most)"
    )
    backoff_initial: float = setting(0.5, "first retry delay after a failed push, seconds")
    backoff_max: float = setting(30.0, "longest retry delay, seconds (jittered)")
    heartbeat_seconds: float = setting(10.0, "how often the backlog is reported to the hub")
    retention_days: int = setting(30, "days delivered outbox rows are kept for a hub restore")
    demo_traffic: bool = setting(
        False, "run the traffic simulator: a few days of history, then live tickets (demo)"
    )
    demo_receipts: bool = setting(
        False, "answer each province notice at once with receipts as leader-1 (demo)"
    )
    demo_lang: str = setting("zh", "language of the simulator's texts: zh or en (demo)")
    categories_file: Path | None = setting(
        None,
        "category tree CSV (code,parent,name_zh,name_en,complaint_limit_workdays); "
        "default: the packaged telecom tree",
    )
    holidays_file: Path | None = setting(
        None,
        "working-day calendar: one YYYY-MM-DD holiday per line, 'work YYYY-MM-DD' for "
        "an adjusted working weekend day, '#' comments; default: weekends only",
    )
    repeat_window_days: int = setting(
        30, "a complaint from the same phone on the same category within this many days is a repeat"
    )
    auto_approve: bool = setting(
        False, "reports leave without the leader's approval (the leader still sees them)"
    )
    approver_not_drafter: bool = setting(
        False, "separation of duties: a report's approver must not be the one who drafted it"
    )
    qa_sample_rate: float = setting(
        0.05, "share of each day's closed tickets the nightly QA sampling draws"
    )
    schedule: bool = setting(True, "run the routine: report drafts, QA sampling, suggestions")
    http_host: str = setting("127.0.0.1", "address the staff console (HTTP pages and API) binds")
    http_port: int = setting(0, "port of the staff console; 0 leaves the console off")
    secret_key_file: Path | None = setting(
        None,
        "file with the console's session-signing key, created (random, mode 0600) when "
        "missing; default fedsync-data/city-CODE.console-key",
    )
    http_secure_cookies: bool = setting(
        False, "send console cookies over HTTPS only (when TLS or a TLS proxy fronts it)"
    )
    http_tls_cert: Path | None = setting(
        None, "PEM certificate (chain) the console serves HTTPS with (with http_tls_key)"
    )
    http_tls_key: Path | None = setting(None, "PEM private key of http_tls_cert")
    http_allow_plain: bool = setting(
        False,
        "let the console serve plain HTTP on a non-loopback address (a TLS proxy in front); "
        "without it, such a console refuses to start unless http_tls_cert/key are set",
    )
    http_trusted_proxies: str = setting(
        "",
        "comma-separated IP addresses or networks of the TLS proxies in front of the console "
        "whose X-Forwarded-For names the client (failed logins are counted per client "
        "address; without it, every user behind a proxy counts as the proxy's address)",
    )
    http_max_body_bytes: int = setting(
        1024 * 1024, "largest request body the console reads, bytes; larger ones get 413"
    )
    http_busy_timeout: float = setting(
        2.0,
        "seconds a console request waits for a SQLite store locked by another writer "
        "before answering 503 (busy, retry)",
    )

    def __post_init__(self) -> None:
        trusted_proxies("http_trusted_proxies", self.http_trusted_proxies)
        if not is_city_code(self.code):
            raise ConfigError(f"code {self.code!r}: give this city's six-digit code (--code)")
        # A store made under a code the province does not have could never be linked (no
        # certificate is issued for it, the hub refuses it): refuse it before it is made.
        roster = load_roster(self.roster)
        if self.code not in {c.code for c in roster}:
            raise ConfigError(
                f"code {self.code!r} is not on the roster ({len(roster)} cities: "
                f"{', '.join(c.code for c in roster[:3])}…; --roster FILE for another "
                "province's)"
            )
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite:///fedsync-data/city-{self.code}.sqlite"
            )
        check_database_url(self.database_url)
        check_timezone(self.timezone)
        check_address("hub", self.hub)
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        # Seconds that time the link and the console: a negative or NaN one would spin or
        # crash the loop that waits on it, so each is refused here, naming it.
        for name in ("backoff_initial", "backoff_max", "heartbeat_seconds", "http_busy_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} {value}: give a number of seconds above 0")
        if self.backoff_max < self.backoff_initial:
            raise ConfigError(
                f"backoff_max {self.backoff_max} is below backoff_initial {self.backoff_initial}"
            )
        if self.retention_days < 0:
            raise ConfigError(f"retention_days {self.retention_days}: give 0 or more days")
        if self.repeat_window_days < 1:
            raise ConfigError("repeat_window_days must be at least 1")
        if not 0 < self.qa_sample_rate <= 1:
            raise ConfigError(f"qa_sample_rate {self.qa_sample_rate}: give a share in (0, 1]")
        if not 0 <= self.http_port <= 65535:
            raise ConfigError(f"http_port {self.http_port}: give a port 1-65535, or 0 for off")
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ConfigError("give both http_tls_cert and http_tls_key, or neither")
        if self.http_max_body_bytes < 1024:
            raise ConfigError("http_max_body_bytes must be at least 1024")
        if self.secret_key_file is None:
            object.__setattr__(
                self, "secret_key_file", Path(f"fedsync-data/city-{self.code}.console-key")
            )
