"""The hub process's settings (flags, FEDSYNC_* environment, TOML ``[hub]``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from sync.config import (
    ConfigError,
    check_address,
    check_database_url,
    check_timezone,
    setting,
    trusted_proxies,
)
from sync.periods import DEFAULT_TIMEZONE, iso_date

if TYPE_CHECKING:
    from province_hub.deadlines import Deadlines

DEADLINE_PERIODS = ("day", "week", "month", "quarter", "year")


@dataclass(frozen=True)
class HubSettings:
    listen: str = setting(
        "127.0.0.1:7443", "gRPC address host:port to listen on (port 0: any free)"
    )
    database_url: str = setting(
        "sqlite:///fedsync-data/hub.sqlite",
        "SQLAlchemy URL of the hub store (SQLite or PostgreSQL); every hub command needs the "
        "one the hub runs on",
        secret=True,  # a PostgreSQL URL may hold a password: never in repr or logs
    )
    pki_dir: Path = setting(
        Path("fedsync-pki"), "directory of ca.crt, hub.crt, hub.key and crl.pem (fedsync pki init)"
    )
    roster: Path | None = setting(None, "roster CSV (code,name_zh,name_en,...); default: Gansu")
    categories: Path | None = setting(
        None,
        "category tree CSV (code,parent,name_zh,name_en,...) whose names the supervisor web "
        "shows beside the codes cities send; default: the packaged telecom tree",
    )
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
    notice_listen: bool = setting(
        True,
        "PostgreSQL: LISTEN for notices committed by other replicas and processes and wake "
        "their cities' streams at once (off: only notice_poll_seconds finds them)",
    )
    notice_listen_fallback_seconds: float = setting(
        5.0,
        "PostgreSQL: how often the notice listener reads the notices table for any it was "
        "not told about (a notification lost while its connection was down)",
    )
    notice_listen_backoff_max: float = setting(
        10.0, "PostgreSQL: longest wait between the notice listener's reconnection attempts"
    )
    db_workers: int = setting(0, "threads doing database work (0: 1 for SQLite, 8 for PostgreSQL)")
    link_silent_seconds: float = setting(
        30.0,
        "a connected city not heard from for this long shows as silent "
        "(3 heartbeat intervals of the cities' default 10 s)",
    )
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
    http_tls_cert: Path | None = setting(
        None, "PEM certificate (chain) the supervisor web serves HTTPS with (with http_tls_key)"
    )
    http_tls_key: Path | None = setting(None, "PEM private key of http_tls_cert")
    http_allow_plain: bool = setting(
        False,
        "let the supervisor web serve plain HTTP on a non-loopback address (a TLS proxy in "
        "front); without it, the hub refuses to start so unless http_tls_cert/key are set",
    )
    http_trusted_proxies: str = setting(
        "",
        "comma-separated IP addresses or networks of the TLS proxies in front of the "
        "supervisor web whose X-Forwarded-For names the client (failed logins are counted "
        "per client address; without it, every user behind a proxy counts as the proxy's "
        "address)",
    )
    http_busy_timeout: float = setting(
        2.0,
        "seconds a supervisor web request waits for a SQLite store locked by another writer "
        "before answering 503 (busy, retry)",
    )
    holidays_file: Path | None = setting(
        None,
        "working-day calendar for report deadlines, the cities' format: one YYYY-MM-DD "
        "holiday per line, 'work YYYY-MM-DD' for an adjusted working weekend day; "
        "default: weekends only",
    )
    report_due_day: str = setting("0d 10:00", "daily reports due: 'Nd HH:MM' after the day")
    report_due_week: str = setting("0d 12:00", "weekly reports due ('0d 12:00': Monday 12:00)")
    report_due_month: str = setting("3wd", "monthly reports due ('3wd': by the 3rd working day)")
    report_due_quarter: str = setting("5wd", "quarterly reports due ('Nwd' or 'Nwd HH:MM')")
    report_due_year: str = setting("5wd", "yearly reports due ('Nwd' or 'Nwd HH:MM')")
    due_reports: str = setting(
        "statistics:day,week,month,quarter,year;qa:month;overtime:month,quarter",
        "reports every city owes, REPORT:PERIOD,...;... (for timeliness and reminders)",
    )
    reminder_minutes: float = setting(
        10.0, "how often overdue reports are looked for and reminded once (0: never)"
    )
    escalation_limit_days: int = setting(
        5,
        "working days an escalation may stay open at the province before the desk marks it "
        "overdue (counted on the holidays_file calendar from when the city escalated it)",
    )
    reminder_lookback_days: int = setting(
        35, "remind only reports whose deadline passed within this many days"
    )
    reminders_from: str = setting(
        "",
        "go-live day YYYY-MM-DD: a report whose deadline passed before it is not reminded (a "
        "new deployment does not remind the cities of what they owed before it) and, if it "
        "never came, not counted missing in report timeliness; empty: none",
    )

    def __post_init__(self) -> None:
        trusted_proxies("http_trusted_proxies", self.http_trusted_proxies)
        check_database_url(self.database_url)
        check_timezone(self.timezone)
        check_address("listen", self.listen, any_port=True)
        if self.db_workers < 0:
            raise ConfigError(f"db_workers {self.db_workers}: give 0 (automatic) or more threads")
        if not 0 <= self.http_port <= 65535:
            raise ConfigError(f"http_port {self.http_port}: give a port 1-65535, or 0 for off")
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ConfigError("give both http_tls_cert and http_tls_key, or neither")
        if not (math.isfinite(self.http_busy_timeout) and self.http_busy_timeout > 0):
            raise ConfigError(
                f"http_busy_timeout {self.http_busy_timeout}: give a number of seconds above 0"
            )
        if self.max_batch < 1:
            raise ConfigError("max_batch must be at least 1")
        if self.max_message_mb < 1:
            raise ConfigError("max_message_mb must be at least 1")
        if self.max_calls_per_city < 1:
            raise ConfigError("max_calls_per_city must be at least 1")
        if self.escalation_limit_days < 1:
            raise ConfigError("escalation_limit_days must be at least 1")
        if self.notice_poll_seconds <= 0 or self.notice_listen_fallback_seconds <= 0:
            raise ConfigError(
                "notice_poll_seconds and notice_listen_fallback_seconds must be above 0"
            )
        if self.notice_listen_backoff_max <= 0:
            raise ConfigError("notice_listen_backoff_max must be above 0")
        if self.reminder_minutes < 0 or self.reminder_lookback_days < 1:
            raise ConfigError("reminder_minutes must be >= 0 and reminder_lookback_days >= 1")
        try:
            _ = self.reminders_since
        except ValueError:
            raise ConfigError(
                f"reminders_from {self.reminders_from!r}: give a day as YYYY-MM-DD, or nothing"
            ) from None
        from province_hub.deadlines import DeadlineRule, DeadlineRuleError, parse_due

        try:
            for kind in DEADLINE_PERIODS:
                name = f"report_due_{kind}"
                DeadlineRule.parse(getattr(self, name), name=name)
            parse_due(self.due_reports)
        except DeadlineRuleError as exc:
            raise ConfigError(str(exc)) from None

    def deadlines(self) -> Deadlines:
        """The deadline rules on the federation's holiday calendar."""
        from province_hub.deadlines import Deadlines
        from sync.calendar import WorkCalendar, load_holidays

        holidays: frozenset[date] = frozenset()
        extra: frozenset[date] = frozenset()
        if self.holidays_file is not None:
            try:
                holidays, extra = load_holidays(self.holidays_file)
            except ValueError as exc:
                raise ConfigError(f"holidays_file: {exc}") from None
        rules = {kind: getattr(self, f"report_due_{kind}") for kind in DEADLINE_PERIODS}
        return Deadlines.from_settings(
            rules=rules,
            due=self.due_reports,
            calendar=WorkCalendar(holidays, extra, tz_name=self.timezone),
            live_from=self.reminders_since,
        )

    @property
    def reminders_since(self) -> date | None:
        """The go-live day of ``reminders_from``, None when not set."""
        return iso_date(self.reminders_from) if self.reminders_from else None
